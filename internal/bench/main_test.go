package bench_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run stops every server, client and fake WeChat it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
