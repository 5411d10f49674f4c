package capture

// Flush writes what the file's buffer holds (-U: each packet as it comes).
func (f *File) Flush() error { return f.pw.buf.Flush() }
