package store

import "time"

// SetStmtCacheClock makes c read the time from now.
func SetStmtCacheClock(c *StmtCache, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// WaitStmtCachePrepares waits for c's prepares in the background (none may
// start meanwhile).
func WaitStmtCachePrepares(c *StmtCache) { c.bg.Wait() }
