// Package bench runs xdpscan and the tools it is compared with (masscan,
// zmap, tcpdump, its own libpcap path) on exactly the same work on the
// namespaced testbed, interleaved run by run, and reports every raw figure,
// the medians, the speed targets and two SVG plots.
//
// Every run is bounded in packets and time, and all traffic stays on the
// testbed's veth pair inside 198.18.0.0/15.
package bench
