// Package route finds the path probes take to their targets: the
// interface, the source address and the next hop's MAC, from the kernel's
// routing and neighbour tables over netlink (any kernel xdpscan runs on).
package route
