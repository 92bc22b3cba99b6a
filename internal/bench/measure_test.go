package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseInfo(t *testing.T) {
	t.Parallel()
	info := parseInfo("# Memory\r\nused_memory:12345\r\nused_memory_human:12.06K\r\n\r\n# CPU\r\nused_cpu_sys:1.500000\r\n" +
		"used_cpu_user:2.250000\r\n\r\n# Commandstats\r\ncmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_hset:calls=7,usec=7,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=99,usec=990,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n")
	require.Equal(t, ServerInfo{UsedMemory: 12345, Commands: 17, CPU: 3750 * time.Millisecond}, info)
}
