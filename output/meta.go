package output

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/internal/nmapsvc"
)

// Meta is what the formats that describe the whole scan (nmap's XML,
// grepable and normal output) say about it beside the results: the
// command line, the ports probed (scaninfo), how many addresses were
// probed (runstats' hosts total). The zero Meta is valid: the ports are
// then the ones that answered, and total the hosts that did.
type Meta struct {
	Args    []string // the command line, argv[0] first
	Version string   // xdpscan's version (XML's version attribute)
	Start   time.Time
	// TCP and UDP are the ports probed (scaninfo's services); Connect
	// makes TCP's scan type "connect" instead of "syn".
	TCP, UDP []uint16
	Connect  bool
	// Hosts is the number of addresses probed (runstats' total); 0: the
	// hosts that answered.
	Hosts uint64
	// Services names ports after nmap's nmap-services; nil: ServicesFile,
	// read once, or no names when it is missing.
	Services *Services
}

func (m *Meta) start() time.Time {
	if m.Start.IsZero() {
		m.Start = time.Now()
	}
	return m.Start
}

// args is the command line as nmap's headers print it.
func (m *Meta) args() string {
	if len(m.Args) == 0 {
		return "xdpscan"
	}
	return strings.Join(m.Args, " ")
}

// version is xdpscan's, for nmap's version attribute and the place of
// nmap's in the "# Nmap 7.93 scan initiated" header.
func (m *Meta) version() string {
	if m.Version == "" {
		return "(devel)"
	}
	return m.Version
}

// ServicesFile is nmap's port-to-service table, read where nmap installed
// it (internal/nmapsvc).
var ServicesFile = nmapsvc.File

// Services maps (protocol, port) to nmap's service name.
type Services = nmapsvc.Table

var (
	servicesOnce sync.Once
	services     *Services
)

// defaultServices is ServicesFile, read on first use; nil when it cannot
// be read (nmap not installed): the outputs then name no service.
func defaultServices() *Services {
	servicesOnce.Do(func() {
		s, err := LoadServices(ServicesFile)
		if err == nil {
			services = s
		}
	})
	return services
}

// LoadServices reads a file in nmap-services' format.
func LoadServices(path string) (*Services, error) { return nmapsvc.Load(path) }

// portRanges is nmap's services attribute: "22,80-81,443".
func portRanges(ports []uint16) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var b []byte
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(ps[i]), 10)
		if j > i {
			b = append(b, '-')
			b = strconv.AppendUint(b, uint64(ps[j]), 10)
		}
		i = j + 1
	}
	return string(b)
}
