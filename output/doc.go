// Package output writes scan results in the user's formats: human,
// ndjson (masscan -oD), list (-oL), json (-oJ, an array valid after every
// flush), csv (with the reason and who sent it), and nmap's xml (-oX, valid
// against nmap.dtd), grepable (-oG) and normal (-oN). The streaming formats
// are flushed within FlushDelay; nmap's hold each host whole, so they are
// written at Close, sorted, with a bounded memory (hosts.go). A Set feeds
// several Writers, each to its own file, from one scan. The package also
// appends to a file a resumed scan continues, and reads a results file
// back (which pairs it already holds). Pure Go, no kernel.
package output
