package httpserve

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// AddressKey is the client a remote address ("ip:port") counts as for
// per-address limits: the IPv4 address, or the /64 prefix of an IPv6 one
// (one host usually has a whole /64, so counting its addresses one by one
// would limit nothing). An address it cannot parse is its own key.
func AddressKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// limitListener closes at once a connection over its address's limit, and
// holds accepting while the total limit is reached. Safe for concurrent
// use.
type limitListener struct {
	net.Listener
	perAddress int           // 0: no limit
	slots      chan struct{} // nil: no total limit
	done       chan struct{} // closed by Close
	closeOnce  sync.Once
	log        *zap.Logger
	logRefusal rate.Sometimes

	mu   sync.Mutex
	open map[string]int // connections per address key
}

// newLimitListener wraps ln; a negative limit is no limit.
func newLimitListener(ln net.Listener, perAddress, total int, log *zap.Logger) *limitListener {
	l := &limitListener{Listener: ln, done: make(chan struct{}), log: log, open: map[string]int{},
		logRefusal: rate.Sometimes{Interval: time.Minute}}
	if perAddress > 0 {
		l.perAddress = perAddress
	}
	if total > 0 {
		l.slots = make(chan struct{}, total)
	}
	return l
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		key := AddressKey(c.RemoteAddr().String())
		if !l.admit(key) {
			_ = c.Close()
			l.release()
			l.logRefusal.Do(func() {
				l.log.Warn("connection over the per-address limit closed (logged once a minute)",
					zap.String("address", key), zap.Int("limit", l.perAddress))
			})
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) admit(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddress > 0 && l.open[key] >= l.perAddress {
		return false
	}
	l.open[key]++
	return true
}

func (l *limitListener) forget(key string) {
	l.mu.Lock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
	l.mu.Unlock()
	l.release()
}

func (l *limitListener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// Close closes the listener; it may be called more than once.
func (l *limitListener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.forget(c.key) })
	return err
}

// CloseWrite lets net/http half-close the connection before closing it, so
// that a client still sending gets the answer rather than a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
