package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCampaignHelpNamesTheContract: `wxmass campaign --help` tells where the
// API's OpenAPI document is.
func TestCampaignHelpNamesTheContract(t *testing.T) {
	t.Parallel()
	for _, c := range (&app{}).command().Commands {
		if c.Name == "campaign" {
			require.Contains(t, c.Description, "GET /v1/openapi.json")
			return
		}
	}
	t.Fatal("no campaign command")
}
