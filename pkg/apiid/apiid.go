// Package apiid makes the uniform interface ids (U_API_ID) of JR/T
// 0185-2020 Appendix B for the operations business systems call: 24 ASCII
// characters, "OP" + the institution's 6-character code + the interface
// type (01 A1, 02 A2) + the 6-digit service category + a 6-digit sequence
// + 2 reserved ("00"). Each component lists its own interfaces
// (module.Module.APIIDs); the REST edge publishes the ids in /openapi.json
// (x-u-api-id) with the institution code of its settings
// (gateway.institution_code). docs/integrators.md "Interface ids".
package apiid

import (
	"fmt"
	"regexp"
)

// Interface types (B.3.4): the security level of the interface.
const (
	A1 = 1 // product information and the like
	A2 = 2 // account data, personal data, transactions
)

// Categories (B.3.5): first level 08 (科技服务, technology services), then
// UIAS's own second level, one per component.
const (
	CategoryIdentity = "080101" // identity authentication (统一身份认证)
	CategoryAuthz    = "080102" // authorisation (授权)
)

// DefaultInstitution is the institution code of a deployment that has not
// set its own (B.3.3: the first 6 characters of the financial institution
// code, JR/T 0124-2014).
const DefaultInstitution = "000000"

// Interface is one operation's place in the catalogue.
type Interface struct {
	// Operation is the operationId of the REST operation (e.g.
	// "AuthService_Authenticate"), which names the gRPC method.
	Operation string
	// Type is A1 or A2.
	Type int
	// Category is the 6-digit service category.
	Category string
	// Seq is the operation's number within its category (1-999999),
	// never reused for another operation.
	Seq int
}

var (
	institutionRe = regexp.MustCompile(`^[0-9A-Z]{6}$`)
	categoryRe    = regexp.MustCompile(`^(0[1-9]|[1-9][0-9])[0-9]{4}$`)
)

// CheckInstitution reports whether code is a 6-character institution code
// (digits and capital letters).
func CheckInstitution(code string) error {
	if !institutionRe.MatchString(code) {
		return fmt.Errorf("an institution code is 6 characters, digits and capital letters (the first 6 of the institution's code), got %q", code)
	}
	return nil
}

// Check reports whether i is a well-formed entry.
func (i Interface) Check() error {
	switch {
	case i.Operation == "":
		return fmt.Errorf("an interface needs its operation")
	case i.Type != A1 && i.Type != A2:
		return fmt.Errorf("%s: type %d is neither A1 (1) nor A2 (2)", i.Operation, i.Type)
	case !categoryRe.MatchString(i.Category):
		return fmt.Errorf("%s: category %q is not 6 digits with a first level of 01-99", i.Operation, i.Category)
	case i.Seq < 1 || i.Seq > 999999:
		return fmt.Errorf("%s: sequence %d is not 1-999999", i.Operation, i.Seq)
	}
	return nil
}

// ID is i's U_API_ID at the institution of code institution (checked by
// CheckInstitution; i by Check).
func (i Interface) ID(institution string) string {
	return fmt.Sprintf("OP%s%02d%s%06d00", institution, i.Type, i.Category, i.Seq)
}
