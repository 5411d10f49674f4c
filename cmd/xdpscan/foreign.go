package main

import (
	"regexp"
	"strings"

	flag "github.com/spf13/pflag"
)

// foreignFlags are flags of masscan, nmap and zmap that xdpscan does not
// have: refused with what xdpscan does instead, not "unknown flag".
// Keys are as typed, without a value.
var foreignFlags = map[string]string{
	"--banners":             "masscan's --banners: xdpscan grabs no banners (it completes no connection)",
	"--capture":             "masscan's --capture: xdpscan grabs no banners; record packets with xdpscan capture",
	"--heartbleed":          "masscan's --heartbleed: xdpscan completes no connection, so it checks no vulnerability",
	"--conf":                "masscan's --conf: xdpscan reads no configuration file (--resume FILE continues a scan)",
	"--echo":                "masscan's --echo: xdpscan prints no configuration; --resume files hold a scan's flags",
	"--readscan":            "masscan's --readscan: xdpscan converts no scan file: write each format at once (-oX, -oG, -oL, -oJ, -oD)",
	"--adapter-port":        "masscan's --adapter-port: use --source-port LO-HI",
	"--ttl":                 "xdpscan does not set the TTL of its probes",
	"--offline":             "masscan's --offline: use --dry-run (prints the probes, sends nothing)",
	"-sV":                   "nmap's -sV: xdpscan does not detect service versions (it completes no connection)",
	"--version-intensity":   "nmap's version detection: xdpscan does not detect service versions",
	"-O":                    "nmap's -O: xdpscan does not detect operating systems",
	"--osscan-guess":        "nmap's OS detection: xdpscan does not detect operating systems",
	"-A":                    "nmap's -A: xdpscan has no OS or version detection, scripts or traceroute; it scans ports",
	"--script":              "nmap's --script: xdpscan runs no scripts",
	"-sC":                   "nmap's -sC: xdpscan runs no scripts",
	"--traceroute":          "nmap's --traceroute: xdpscan does not trace routes",
	"--reason":              "nmap's --reason: not needed: every result carries its reason (-oX, -oD, CSV)",
	"-sn":                   "nmap's -sn: use --ping alone (ICMP echo host discovery)",
	"-sP":                   "nmap's -sP: use --ping alone (ICMP echo host discovery)",
	"-PE":                   "nmap's -PE: use --ping (ICMP echo), or --ping-first to probe only the hosts that answer",
	"-PS":                   "nmap's -PS: xdpscan discovers hosts by ICMP echo only: --ping or --ping-first",
	"-PA":                   "nmap's -PA: xdpscan discovers hosts by ICMP echo only: --ping or --ping-first",
	"-PU":                   "nmap's -PU: xdpscan discovers hosts by ICMP echo only: --ping or --ping-first",
	"-PP":                   "nmap's -PP: xdpscan discovers hosts by ICMP echo only: --ping or --ping-first",
	"-sL":                   "nmap's -sL: use --dry-run (lists the probes, sends nothing)",
	"-6":                    "nmap's -6: not needed: IPv6 targets are scanned as given, and both families mix in one scan",
	"-oA":                   "nmap's -oA: name each file: -oN FILE -oX FILE -oG FILE",
	"-oS":                   "nmap's -oS: xdpscan has no script-kiddie output; try -oN",
	"--min-rate":            "xdpscan sends at one exact rate: use --rate N (probes per second)",
	"--min-parallelism":     "xdpscan sends at one exact rate: use --rate N (probes per second)",
	"--max-parallelism":     "use --rate N (probes per second), or --workers N with --connect",
	"--host-timeout":        "use --wait (how long to listen after the last probe)",
	"--max-rtt-timeout":     "use --wait (listening after the last probe), or --connect-timeout",
	"--initial-rtt-timeout": "use --wait (listening after the last probe), or --connect-timeout",
	"--scan-delay":          "use --rate N (probes per second)",
	"--data-length":         "xdpscan's probes carry no padding (UDP probes carry the service's payload)",
	"-D":                    "nmap's -D: xdpscan sends no decoys",
	"-f":                    "nmap's -f: xdpscan does not fragment its probes",
	"--spoof-mac":           "use --adapter-mac MAC",
	"-S":                    "use --source-ip ADDR (nmap's -S, zmap's -S)",
	"-B":                    "zmap's -B: use --rate N (probes per second)",
	"--bandwidth":           "zmap's --bandwidth: use --rate N (probes per second)",
	"-M":                    "zmap's -M: -p PORTS sends SYNs, -p U:PORT UDP, --ping ICMP echo",
	"--probe-module":        "zmap's --probe-module: -p PORTS sends SYNs, -p U:PORT UDP, --ping ICMP echo",
	"-G":                    "zmap's -G: use --router-mac MAC",
	"--gateway-mac":         "zmap's --gateway-mac: use --router-mac MAC",
	"--whitelist-file":      "zmap's --whitelist-file: use -iL FILE",
	"--allowlist-file":      "zmap's --allowlist-file: use -iL FILE",
	"--blacklist-file":      "zmap's --blacklist-file: use --exclude-file FILE",
	"--blocklist-file":      "zmap's --blocklist-file: use --exclude-file FILE",
	"-b":                    "zmap's -b: use --exclude-file FILE",
	"-w":                    "zmap's -w: use -iL FILE",
	"-N":                    "zmap's -N: xdpscan scans every target given; narrow them with --exclude, --shards/--shard",
	"--max-targets":         "zmap's --max-targets: xdpscan scans every target given; narrow them with --exclude, --shards/--shard",
	"-r":                    "use --rate N (probes per second; zmap's -r)",
	"--cooldown-time":       "zmap's --cooldown-time: use --wait",
	"-P":                    "zmap's -P: use --retries N",
	"--probes":              "zmap's --probes: use --retries N",
	"-t":                    "zmap's -t: xdpscan ends when every probe is sent and --wait is over",
	"--max-runtime":         "zmap's --max-runtime: xdpscan ends when every probe is sent and --wait is over",
	"--randomize-hosts":     "not needed: xdpscan always sends in a random order (--seed N repeats one)",
	"--send-eth":            "not needed: xdpscan always sends whole Ethernet frames",
}

// nmapTiming is nmap's -T0..-T5 and -Tname.
var nmapTiming = regexp.MustCompile(`^-T([0-5]|paranoid|sneaky|polite|normal|aggressive|insane)$`)

// foreignFlag is the hint for arg (as typed), when it is another
// scanner's flag this command does not have.
func foreignFlag(fs *flag.FlagSet, arg, name string) (string, bool) {
	if fs.Lookup(name) != nil {
		return "", false
	}
	typed, _, _ := strings.Cut(arg, "=")
	if nmapTiming.MatchString(typed) {
		return foreignHint(typed, "nmap's -T: xdpscan has no timing templates: set --rate N (probes per second) and --wait SECONDS"), true
	}
	if len(typed) > 2 && typed[1] != '-' && !dashNames[typed[1:]] {
		// -PS80, -PU53: nmap's discovery probes carry ports.
		if h, ok := foreignFlags[typed[:3]]; ok && strings.HasPrefix(typed, "-P") {
			return foreignHint(typed, h), true
		}
	}
	h, ok := foreignFlags[typed]
	if !ok {
		return "", false
	}
	return foreignHint(typed, h), true
}

var ownerPrefix = regexp.MustCompile(`^(masscan|nmap|zmap)'s [^:]+: `)

// foreignHint words a foreignFlags entry: "xdpscan has no -sV (nmap's):
// it does not detect service versions".
func foreignHint(typed, h string) string {
	owner := ""
	if m := ownerPrefix.FindStringSubmatch(h); m != nil {
		owner = " (" + m[1] + "'s)"
		h = h[len(m[0]):]
	}
	h = strings.Replace(h, "xdpscan ", "it ", 1)
	return "xdpscan has no " + typed + owner + ": " + h
}
