package check

import (
	"fmt"
	"os"
	"testing"
)

// scratch holds what the tests build once and share (the wxmass binary);
// TestMain removes it.
var scratch string

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "wxmass-deploy-check-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(scratch)
	os.Exit(code)
}
