package commands

import "github.com/uias/uias/services/authz"

var (
	badModel = authz.BadModel
	inUse    = authz.InUse
	sodErr   = authz.SoDError
)
