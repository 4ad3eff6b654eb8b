package identity

// ResendLimits lowers the bounds of one resend event and of a group's
// members an item for a test, until the returned function restores them.
func ResendLimits(eventBytes, membersPerItem int) (restore func()) {
	b, m := resendEventBytes, resendMembersPerItem
	resendEventBytes, resendMembersPerItem = eventBytes, membersPerItem
	return func() { resendEventBytes, resendMembersPerItem = b, m }
}
