package identity

import (
	"fmt"
	"strings"

	"github.com/uias/uias/pkg/apierr"
)

// Unit (单位) accounts (ADR 0039; design 004 §2.1.2.4): an account of a
// company or agency that signs in as itself. A unit is identified by its
// unified social credit code (统一社会信用代码, GB 32100-2015) or its
// organisation code (组织机构代码, GB 11714-1997), which characters 9-17 of
// the former are. Its feature code is the keyed hash of organisation code +
// unit name + login name (a person's: ID type + number + name + login
// name), over an input of its own, so the two never collide; the ID key
// and the centres' key of either code are the organisation code's, so a
// unit registered by one code and again by the other is one unit
// (ID_NUMBER_TAKEN).

// ReasonIDTypeMismatch: an ID type that does not fit the account's user
// type (a unit's code on a person's account, a person's document on a
// unit's).
const ReasonIDTypeMismatch = "ID_TYPE_MISMATCH"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonIDTypeMismatch, Code: apierr.InvalidArgument, Legacy: -5,
		Doc: "The ID type does not fit the account's user type: a unit (USER_TYPE_UNIT) takes a unified social credit code or an organisation code (or none), a person any other ID type. Metadata `field` names the field. To turn a person's account into a unit's (or back), change user_type, id_type and id_number together."})
}

// Norm is t with the zero value (rows and replicas from before unit
// accounts; an unspecified request) read as a person's.
func (t UserType) Norm() UserType {
	if t == UserTypeUnit {
		return UserTypeUnit
	}
	return UserTypePerson
}

// validUserType reports whether t is a user type a request may give (0 is
// a person's).
func validUserType(t UserType) bool {
	return t == 0 || t == UserTypePerson || t == UserTypeUnit
}

// unitIDType reports whether t is one of a unit's ID types.
func unitIDType(t IDType) bool {
	return t == IDTypeUSCC || t == IDTypeOrgCode
}

// checkUserIDType checks that ID type t fits user type ut.
func checkUserIDType(ut UserType, t IDType) error {
	switch {
	case !validUserType(ut):
		return badField("user_type", "user_type is not a known user type")
	case t == IDTypeNone:
		return nil
	case ut.Norm() == UserTypeUnit && !unitIDType(t):
		return apierr.New(apierr.InvalidArgument, ReasonIDTypeMismatch,
			"a unit account takes a unified social credit code or an organisation code as its ID type (or none)").
			WithMeta(apierr.MetaField, "id_type")
	case ut.Norm() == UserTypePerson && unitIDType(t):
		return apierr.New(apierr.InvalidArgument, ReasonIDTypeMismatch,
			"a unified social credit code or organisation code is a unit's: set user_type to unit (or give a person's id_type and id_number with it)").
			WithMeta(apierr.MetaField, "id_type")
	}
	return nil
}

// checkAccountID checks an account's user type, ID type and
// (normalIDNumber) number.
func checkAccountID(ut UserType, t IDType, idNumber string) error {
	if err := checkIDNumber(t, idNumber); err != nil {
		return err
	}
	return checkUserIDType(ut, t)
}

// normalUnitCode is a unit code as it is checked, keyed and stored: upper
// case, an organisation code without the hyphen before its check
// character ("12345678-8" is "123456788").
func normalUnitCode(t IDType, n string) string {
	n = strings.ToUpper(n)
	if t == IDTypeOrgCode && len(n) == 10 && n[8] == '-' {
		n = n[:8] + n[9:]
	}
	return n
}

// codeValue is the value of a code character (0-9, A-Z as 10-35), or -1.
func codeValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

// validOrgCode reports whether n (normalUnitCode) is a 9-character
// organisation code with its check character (GB 11714-1997: eight
// digits or capital letters weighted 3 7 9 10 5 8 4 2; check = 11 - sum
// mod 11, 10 written X, 11 written 0).
func validOrgCode(n string) bool {
	if len(n) != 9 {
		return false
	}
	weights := [8]int{3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 8; i++ {
		v := codeValue(n[i])
		if v < 0 {
			return false
		}
		sum += v * weights[i]
	}
	var check byte
	switch c := 11 - sum%11; c {
	case 10:
		check = 'X'
	case 11:
		check = '0'
	default:
		check = byte('0' + c)
	}
	return n[8] == check
}

// usccChars are the characters of a unified social credit code, in the
// order of their values (GB 32100-2015: no I, O, S, V, Z).
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// validUSCC reports whether n (normalUnitCode) is an 18-character unified
// social credit code with its check character (GB 32100-2015: weights
// 3^i mod 31; check = 31 - sum mod 31, 31 written 0).
func validUSCC(n string) bool {
	if len(n) != 18 {
		return false
	}
	weights := [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccChars, n[i])
		if v < 0 {
			return false
		}
		sum += v * weights[i]
	}
	return n[17] == usccChars[(31-sum%31)%31]
}

// orgCodeOf is the organisation code of a unit's ID (a unified social
// credit code's characters 9-17), "" for a person's ID types.
func orgCodeOf(t IDType, idNumber string) string {
	n := normalUnitCode(t, strings.TrimSpace(idNumber))
	switch {
	case t == IDTypeOrgCode:
		return n
	case t == IDTypeUSCC && len(n) == 18:
		return n[8:17]
	}
	return ""
}

// keyedID is what the ID key and the centres' key of an ID hash: a unit's
// organisation code for either unit code (one unit, whichever code it was
// registered with), other IDs as given.
func keyedID(t IDType, idNumber string) (IDType, string) {
	if unitIDType(t) {
		if oc := orgCodeOf(t, idNumber); oc != "" {
			return IDTypeOrgCode, oc
		}
	}
	return t, idNumber
}

// unitFeaturePrefix starts a unit's feature code input: a person's starts
// with a digit (the ID type), idKey's and centresKey's with "uias.", so
// none of them hashes another's input.
const unitFeaturePrefix = "unit\x00"

// accountFeatureCode is the feature code of an account of user type ut: a
// person's featureCode, or a unit's keyed hash of organisation code + unit
// name + login name.
func (s *Service) accountFeatureCode(ut UserType, t IDType, idNumber, name, login string) string {
	if ut.Norm() == UserTypeUnit {
		return s.sealer.BlindIndex(fmt.Sprintf("%s%s\x00%s\x00%s", unitFeaturePrefix, orgCodeOf(t, idNumber), name, login))[:32]
	}
	return s.featureCode(t, idNumber, name, login)
}

// StoredUserType is t as a User holds it, stores and replicates it:
// UserTypeUnit, or 0 for a person (what rows and replica records from
// before unit accounts hold).
func StoredUserType(t UserType) UserType {
	if t.Norm() == UserTypeUnit {
		return UserTypeUnit
	}
	return 0
}
