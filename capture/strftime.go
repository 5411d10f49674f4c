package capture

/*
#include <stdlib.h>
#include <time.h>

// The C library's strftime on the local time, as tcpdump -G names its
// files: every conversion, the locale and TZ exactly as tcpdump sees them.
static size_t xdpscan_strftime(char *buf, size_t n, const char *fmt, long long t) {
	time_t tt = (time_t)t;
	struct tm tm;
	tzset();
	if (localtime_r(&tt, &tm) == NULL) {
		return 0;
	}
	return strftime(buf, n, fmt, &tm);
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// maxPath is PATH_MAX: tcpdump's limit on a formatted name too.
const maxPath = 4096

// Strftime formats pattern with the C library's strftime(3) at t, local
// time. A result that is empty or longer than PATH_MAX is an error.
func Strftime(pattern string, t time.Time) (string, error) {
	if pattern == "" {
		return "", fmt.Errorf("an empty -w name")
	}
	cfmt := C.CString(pattern)
	defer C.free(unsafe.Pointer(cfmt))
	buf := (*C.char)(C.malloc(maxPath))
	defer C.free(unsafe.Pointer(buf))
	n := C.xdpscan_strftime(buf, maxPath, cfmt, C.longlong(t.Unix()))
	if n == 0 {
		return "", fmt.Errorf("-w %q: strftime gives an empty name or one longer than %d bytes", pattern, maxPath-1)
	}
	return C.GoStringN(buf, C.int(n)), nil
}
