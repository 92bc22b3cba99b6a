package redisconn_test

import (
	"strings"
	"testing"

	"github.com/wxmass/wxmass/internal/redisconn"
)

var fuzzSchemes = []string{"redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster", "http", "REDIS"}

// rotate changes every letter and digit of s to another of the same kind
// (digits stay digits, hex letters stay hex letters), so that a URL built
// with it parses the same way as with s. An error that differs between the
// two depends on the password's content: a fragment of it leaked.
func rotate(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			b[i] = '0' + (c-'0'+1)%10
		case c >= 'a' && c <= 'f':
			b[i] = 'a' + (c-'a'+1)%6
		case c >= 'g' && c <= 'z':
			b[i] = 'g' + (c-'g'+1)%20
		case c >= 'A' && c <= 'F':
			b[i] = 'A' + (c-'A'+1)%6
		case c >= 'G' && c <= 'Z':
			b[i] = 'G' + (c-'G'+1)%20
		}
	}
	return string(b)
}

func FuzzParse(f *testing.F) {
	f.Add(uint8(0), "", "pw", "127.0.0.1:6379", "/0")
	f.Add(uint8(1), "user", "s3cr%40t", "h:6380", "/2?dial_timeout=2s&pool_size=3")
	f.Add(uint8(2), "", "data", "s1:1,s2:2,[::1]:3", "/0?master=wxmass&sentinel_password=x")
	f.Add(uint8(3), "app", "pw", "s1", "?master=m&route_by_latency=true")
	f.Add(uint8(4), "", "pw", "n1:1,n2:2", "/3")
	f.Add(uint8(5), "", "pw", "n1:1", "?skip_verify=true&max_redirects=2")
	f.Add(uint8(0), "", "ab/cd", "h:1", "")
	f.Add(uint8(0), "u", "12?cd", "h:1", "")
	f.Add(uint8(0), "", "p%zz", "h:1", "")
	f.Add(uint8(6), "", "pw", "h:1", "")
	f.Fuzz(func(t *testing.T, scheme uint8, user, password, hosts, rest string) {
		build := func(pw string) string {
			return fuzzSchemes[int(scheme)%len(fuzzSchemes)] + "://" + user + ":" + pw + "@" + hosts + rest
		}
		raw := build(password)
		o, err := redisconn.Parse(raw)
		if err == nil {
			c := o.NewClient()
			_ = c.Close()
			_ = o.AsynqOpt()
		}

		// The password must stand for itself: not also typed elsewhere, and
		// not holding the '@' that separates credentials from hosts.
		others := user + hosts + rest + "xxxxx"
		other := rotate(password)
		if strings.Contains(password, "@") || other == password ||
			strings.Contains(others, password) || strings.Contains(others, other) {
			return
		}
		o2, err2 := redisconn.Parse(build(other))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("password content decides validity: %v / %v", err, err2)
		}
		if err != nil {
			msg, msg2 := err.Error(), err2.Error()
			if len(password) >= 4 && strings.Contains(msg, password) && !strings.Contains(msg2, password) {
				t.Fatalf("error leaks the password %q: %s", password, msg)
			}
			// go-redis's own messages are scrubbed of the password, which
			// may also blank out other text; compare only when neither was.
			if !strings.Contains(msg+msg2, "xxxxx") && msg != msg2 {
				t.Fatalf("error depends on the password's content:\n%s\n%s", msg, msg2)
			}
			return
		}
		if len(password) >= 4 && strings.Contains(o.Redacted(), password) {
			t.Fatalf("Redacted leaks the password %q: %s", password, o.Redacted())
		}
		if o.Redacted() != o2.Redacted() {
			t.Fatalf("Redacted depends on the password's content:\n%s\n%s", o.Redacted(), o2.Redacted())
		}
	})
}
