package capture

import (
	"testing"

	"go.uber.org/goleak"
)

// The text writer and the offline reader start goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
