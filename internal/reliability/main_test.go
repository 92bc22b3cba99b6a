//go:build reliability

package reliability

import (
	"os"
	"testing"
)

// The scenarios run one after the other, never in parallel: each measures
// the rate the fake sees, which needs the machine.
func TestMain(m *testing.M) { os.Exit(Main(m)) }
