// Package engine holds the scan engine's parts that are not tied to the
// kernel: probe cookies, targets, and (as the scan grows) transmitter,
// correlation and output.
package engine
