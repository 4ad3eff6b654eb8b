package identity

// RunningChecks is how many accounts have a password check listed as
// running on s (admitted in memory, or in its admission transaction).
func RunningChecks(s *Service) int {
	s.running.mu.Lock()
	defer s.running.mu.Unlock()
	return len(s.running.m)
}
