// Package output writes scan results in the user's formats (human,
// ndjson, list, grepable, csv, nmap's xml), flushed within FlushDelay,
// appends to a file a resumed scan continues, and reads a results file
// back (which pairs it already holds). Pure Go, no kernel.
package output
