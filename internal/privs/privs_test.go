package privs

import (
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseStatus(t *testing.T) {
	const full = "Name:\txdpscan\nPid:\t42\nUid:\t0\t0\t0\t0\nGid:\t65534\t65534\t65534\t65534\nGroups:\t65534 27 \n" +
		"CapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t0000008000003000\n" +
		"CapBnd:\t000001ffffffffff\nCapAmb:\t0000008000003000\nNoNewPrivs:\t1\n"
	tests := []struct {
		name    string
		in      string
		want    Thread
		wantErr string
	}{
		{name: "root with bpf, net_admin and net_raw effective", in: full, want: Thread{TID: 42,
			Eff: Of(CapBPF, CapNetAdmin, CapNetRaw), Prm: 0x1fffeffffff, Bnd: 0x1ffffffffff, Amb: Of(CapBPF, CapNetAdmin, CapNetRaw),
			NoNewPrivs: true, GID: [4]int{65534, 65534, 65534, 65534}, Groups: "65534 27"}},
		{name: "no NoNewPrivs line", in: strings.Replace(full, "NoNewPrivs:\t1\n", "", 1), wantErr: "no NoNewPrivs line"},
		{name: "bad hex", in: strings.Replace(full, "CapEff:\t0000008000003000", "CapEff:\tzz", 1), wantErr: `CapEff "zz"`},
		{name: "three uids", in: strings.Replace(full, "Uid:\t0\t0\t0\t0", "Uid:\t0\t0\t0", 1), wantErr: "want 4 IDs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSetNames(t *testing.T) {
	tests := []struct {
		name           string
		set            Set
		str, setcapStr string
	}{
		{"empty", 0, "none", ""},
		{"scan", Of(CapNetRaw, CapBPF, CapNetAdmin), "CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF", "cap_bpf,cap_net_admin,cap_net_raw"},
		{"unknown number", Of(63), "CAP_63", "cap_63"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.String(); got != tc.str {
				t.Errorf("String %q, want %q", got, tc.str)
			}
			if got := tc.set.Setcap(); got != tc.setcapStr {
				t.Errorf("Setcap %q, want %q", got, tc.setcapStr)
			}
		})
	}
}

// TestCurrentMatchesKernel reads this thread's sets and checks them
// against capget(2), the kernel's own answer.
func TestCurrentMatchesKernel(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	eff := Set(data[0].Effective) | Set(data[1].Effective)<<32
	prm := Set(data[0].Permitted) | Set(data[1].Permitted)<<32
	if cur.Eff != eff || cur.Prm != prm || cur.TID != unix.Gettid() {
		t.Errorf("Current %+v; capget: eff %x prm %x, tid %d", cur, eff, prm, unix.Gettid())
	}
}

// childEnv makes the test binary run restrictChild instead of the tests:
// Restrict cannot be undone, so it runs in a process of its own.
const childEnv = "PRIVS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if path, ok := strings.CutPrefix(mode, "as:"); ok {
			restrictAsChild(path)
		} else {
			restrictChild(mode)
		}
		return
	}
	os.Exit(m.Run())
}

// childReport is what the child saw after Restrict: every thread's sets
// and what each thread could still do.
type childReport struct {
	DroppedBounding bool
	Err             string
	Threads         []Thread
	// RawSocket is the result, per thread that tried, of opening an
	// AF_PACKET socket (CAP_NET_RAW) after the drop.
	RawSocket []string
}

// restrictChild starts threads busy in Go, blocked in a system call and
// locked to goroutines, drops to the set named by mode ("none" or
// "net_raw"), and prints a childReport.
func restrictChild(mode string) {
	keep := Set(0)
	if mode == "net_raw" {
		keep = Of(CapNetRaw)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runtime.LockOSThread() // each on a thread of its own
			defer runtime.UnlockOSThread()
			if i%2 == 0 {
				// Blocked in the kernel when the signal comes.
				var fds [2]int
				unix.Pipe(fds[:])
				go func() { <-stop; unix.Write(fds[1], []byte{1}) }()
				unix.Read(fds[0], make([]byte, 1))
				unix.Close(fds[0])
				unix.Close(fds[1])
			} else {
				<-stop
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err == nil {
				unix.Close(fd)
				results <- "ok"
			} else {
				results <- err.Error()
			}
		}(i)
	}
	for {
		ts, _ := Threads(0)
		if len(ts) >= 7 {
			break
		}
		runtime.Gosched()
	}
	var r childReport
	var err error
	r.DroppedBounding, err = Restrict(keep)
	if err != nil {
		r.Err = err.Error()
	}
	r.Threads, _ = Threads(0)
	close(stop)
	wg.Wait()
	close(results)
	for s := range results {
		r.RawSocket = append(r.RawSocket, s)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func TestRestrictEveryThread(t *testing.T) {
	self, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if !self.Eff.Has(CapNetRaw) || !self.Eff.Has(CapSetPCap) {
		t.Fatalf("run as root: this test drops capabilities it must first hold (effective: %s)", self.Eff)
	}
	tests := []struct {
		mode      string
		keep      Set
		rawSocket string
	}{
		{"none", 0, unix.EPERM.Error()},
		{"net_raw", Of(CapNetRaw), "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			r := runChild(t, "Restrict", tc.mode)
			if len(r.Threads) < 7 {
				t.Errorf("%d threads, want at least 7", len(r.Threads))
			}
			for _, th := range r.Threads {
				want := Thread{TID: th.TID, Eff: tc.keep, Prm: tc.keep, Bnd: tc.keep, NoNewPrivs: true, UID: th.UID, GID: th.GID, Groups: th.Groups}
				if th != want {
					t.Errorf("thread %d: %+v, want %+v", th.TID, th, want)
				}
			}
			if len(r.RawSocket) != 6 {
				t.Errorf("%d threads tried a raw socket, want 6", len(r.RawSocket))
			}
			for i, s := range r.RawSocket {
				if s != tc.rawSocket {
					t.Errorf("thread %d: AF_PACKET socket after the drop: %s, want %s", i, s, tc.rawSocket)
				}
			}
		})
	}
}

// runChild runs this test binary as the child that calls fn (Restrict or
// RestrictAs, for the messages) as mode says, and returns its report. It
// fails the test unless the child succeeded and, running as root (which
// holds CAP_SETPCAP), dropped the bounding set.
func runChild(t *testing.T, fn, mode string) childReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var r childReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if r.Err != "" {
		t.Fatalf("%s: %s", fn, r.Err)
	}
	if !r.DroppedBounding {
		t.Errorf("%s: root holds CAP_SETPCAP: the bounding set must have been dropped", fn)
	}
	return r
}

func TestRestrictAsNobody(t *testing.T) {
	u, err := LookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 65534 || u.GID != 65534 {
		t.Fatalf("nobody: %+v, want uid and gid 65534", u)
	}
	if _, err := LookupUser("no-such-user-xdpscan"); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("unknown user: %v", err)
	}
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	r := runChild(t, "RestrictAs", "as:"+file.Name())
	if len(r.Threads) < 5 {
		t.Errorf("%d threads, want at least 5", len(r.Threads))
	}
	for _, th := range r.Threads {
		ids := [4]int{65534, 65534, 65534, 65534}
		want := Thread{TID: th.TID, NoNewPrivs: true, UID: ids, GID: ids, Groups: "65534"}
		if th != want {
			t.Errorf("thread %d: %+v, want %+v", th.TID, th, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(file.Name(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("output file owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// restrictAsChild switches to nobody with RestrictAs, handing it path, with
// threads locked to goroutines, and prints a childReport.
func restrictAsChild(path string) {
	var r childReport
	u, err := LookupUser("nobody")
	if err == nil {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); runtime.LockOSThread(); <-stop; runtime.UnlockOSThread() }()
		}
		for {
			ts, _ := Threads(0)
			if len(ts) >= 5 {
				break
			}
			runtime.Gosched()
		}
		r.DroppedBounding, err = RestrictAs(u, []string{path, "-", path + ".not-there"}, 0)
		r.Threads, _ = Threads(0)
		close(stop)
		wg.Wait()
	}
	if err != nil {
		r.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
