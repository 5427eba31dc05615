package proxy

import (
	"fmt"
	"sync"
	"time"
)

// loginLimiter counts wrong passwords per client address in fixed
// windows. Past the limit the address's logins are refused before bcrypt
// runs, so guessing passwords is slow and a flood of bad logins cannot
// burn the CPU. Requests without credentials are not affected: a
// neighbour behind the same NAT can still pull anonymously.
type loginLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	addrs map[string]*loginWindow
}

type loginWindow struct {
	start time.Time
	fails int
}

// maxLoginAddrs bounds the table; past it, windows that ended are dropped,
// and if none has, the table starts afresh (bounded memory wins over
// exactness under a flood from that many addresses).
const maxLoginAddrs = 65536

func newLoginLimiter(limit int, window time.Duration) *loginLimiter {
	return &loginLimiter{limit: limit, window: window, addrs: map[string]*loginWindow{}}
}

// blocked returns how long addr must wait before its next login is
// looked at; 0 if it may try now. A nil limiter never blocks.
func (l *loginLimiter) blocked(addr string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.addrs[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		return 0
	}
	if w.fails < l.limit {
		return 0
	}
	return w.start.Add(l.window).Sub(now)
}

// fail counts one wrong password from addr.
func (l *loginLimiter) fail(addr string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.addrs[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.addrs) >= maxLoginAddrs {
			l.sweep(now)
		}
		w = &loginWindow{start: now}
		l.addrs[addr] = w
	}
	w.fails++
}

func (l *loginLimiter) sweep(now time.Time) {
	for a, w := range l.addrs {
		if now.Sub(w.start) >= l.window {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= maxLoginAddrs {
		clear(l.addrs)
	}
}

// loginRefused is the error for a login from an address over its budget:
// 429 TOOMANYREQUESTS with Retry-After.
type loginRefused struct{ retryAfter time.Duration }

func (e *loginRefused) Error() string {
	return fmt.Sprintf("too many failed logins from this address; try again in %s", e.retryAfter.Round(time.Second))
}

// seconds is Retry-After's value: whole seconds, at least 1.
func (e *loginRefused) seconds() int { return max(1, int((e.retryAfter+time.Second-1)/time.Second)) }
