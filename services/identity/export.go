package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// Bulk export: every org, person or account link as rows of the columns
// the import reads (so an export imports again into another UIAS), read in
// pages of the primary key (orgs by path: a parent before its children),
// each page as an administrator read (adminreads.go), so neither the
// memory used nor a login's share of the CPUs grows with the number of
// rows. Password hashes are never exported. ID numbers and phone numbers
// are masked unless the caller asks for them in clear and is one of the
// administrators Config.PersonalDataAdmins names. The root org is not
// exported (every UIAS has its own, code "root"). One audit record is
// written per export.

// ExportPageSize is the number of rows read per page.
const ExportPageSize = 1000

// ExportedUser is a user with its org's code.
type ExportedUser struct {
	User    *User
	OrgCode string
}

// ExportedOrg is an org with its parent's code ("" for the root).
type ExportedOrg struct {
	Org        *Org
	ParentCode string
}

// ExportedLink is an account link with its user's login name and its
// application's type and code.
type ExportedLink struct {
	Link                        *AccountLink
	LoginName, AppType, AppCode string
}

// ExportStore reads pages for export (part of Store): up to n rows whose
// key (users, links: id; orgs: path) is after after ("" from the start),
// in key order. Users and links carry the fields an export shows and
// their keys only (no password hash, no times).
type ExportStore interface {
	ExportUsers(ctx context.Context, after string, n int) ([]ExportedUser, error)
	ExportOrgs(ctx context.Context, after string, n int) ([]ExportedOrg, error)
	ExportLinks(ctx context.Context, after string, n int) ([]ExportedLink, error)
}

// ReasonPersonalDataDenied refuses an export of personal data in clear.
const ReasonPersonalDataDenied = "PERSONAL_DATA_DENIED"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonPersonalDataDenied, Code: apierr.PermissionDenied,
		Doc: "Export: ID numbers and phone numbers in clear (reveal_personal) are for the administrators holding the personal_data_admin role (authz permission identity.personal reveal); export without it for masked values."})
}

// ExportOptions are an export's settings.
type ExportOptions struct {
	Kind   string // users, orgs, links
	Reveal bool   // ID numbers and phones in clear
}

// ExportColumns are the columns of each kind's export rows, in order: the
// import's columns (importfile.Columns) that an export fills
// (readExportPage appends each row's values in this order).
var ExportColumns = map[string][]string{
	"users": {"login_name", "display_name", "org_code", "email", "phone", "id_type", "id_number", "status", "min_auth_level", "password_only", "user_type"},
	"orgs":  {"code", "name", "parent_code", "status"},
	"links": {"login_name", "app_type", "app_code", "app_account", "status"},
}

// idTypeNames are the id_type column's canonical values.
var idTypeNames = map[IDType]string{IDTypeNone: "", IDTypeResidentID: "resident_id", IDTypePassport: "passport",
	IDTypeMilitary: "military", IDTypeOther: "other", IDTypeUSCC: "uscc", IDTypeOrgCode: "org_code"}

// userTypeNames are the user_type column's canonical values.
var userTypeNames = map[UserType]string{UserTypePerson: "person", UserTypeUnit: "unit"}

// levelNames are the min_auth_level column's canonical values (0: the
// policy's, an empty cell).
var levelNames = map[int]string{0: "", AuthLevelAny: "any", AuthLevelTwoFactor: "two-factor", AuthLevelCertificate: "certificate"}

// levelValues maps the min_auth_level column's accepted values.
var levelValues = map[string]int{"": 0, "default": 0, "默认": 0, "0": 0, "any": AuthLevelAny, "任意": AuthLevelAny, "1": AuthLevelAny,
	"two-factor": AuthLevelTwoFactor, "双因素": AuthLevelTwoFactor, "2": AuthLevelTwoFactor,
	"certificate": AuthLevelCertificate, "证书": AuthLevelCertificate, "3": AuthLevelCertificate}

// yesNoNames are the password_only column's canonical values.
var yesNoNames = map[bool]string{false: "", true: "yes"}

// yesNoValues maps the password_only column's accepted values.
var yesNoValues = map[string]bool{"": false, "no": false, "否": false, "false": false, "0": false,
	"yes": true, "是": true, "true": true, "1": true}

// statusNames are the status column's canonical values.
var statusNames = map[Status]string{StatusActive: "active", StatusDisabled: "disabled"}

// statusValues maps the status column's accepted values.
var statusValues = map[string]Status{"": StatusActive, "active": StatusActive, "正常": StatusActive, "启用": StatusActive,
	"1": StatusActive, "disabled": StatusDisabled, "停用": StatusDisabled, "禁用": StatusDisabled, "2": StatusDisabled}

// mayRevealPersonal reports whether the caller in ctx may export personal
// data in clear. Export itself is an administrator's action (identity.export
// run, checked before this). With a reveal gate (SetRevealGate: authz's
// identity.personal reveal, held by the personal_data_admin role) the gate
// decides for an active caller; without one (identity.admin_authz off)
// the deprecated setting identity.personal_data_admins names who may.
func (s *Service) mayRevealPersonal(ctx context.Context) (bool, error) {
	c := caller.From(ctx)
	if c == nil || c.Principal == "" || s.revealGate == nil && len(s.cfg.PersonalDataAdmins) == 0 {
		return false, nil
	}
	u, err := s.store.GetUser(ctx, c.Principal)
	if err != nil {
		return false, err
	}
	if u.Status != StatusActive {
		return false, nil
	}
	if s.revealGate != nil {
		return s.revealGate(ctx, u)
	}
	return slices.Contains(s.cfg.PersonalDataAdmins, u.LoginName), nil
}

// SetRevealGate makes gate decide who may export personal data in clear
// (the authz component's identity.personal reveal) instead of the
// deprecated setting identity.personal_data_admins.
func (s *Service) SetRevealGate(gate func(ctx context.Context, u *User) (bool, error)) {
	s.revealGate = gate
}

// AppointPersonalDataAdmins records, for each of logins that names a
// person, an appointment to the personal_data_admin role (made in authz by
// MigrateAdmins): the migration of the deprecated setting
// identity.personal_data_admins. It returns how many it recorded; logins
// naming nobody are skipped.
func (s *Service) AppointPersonalDataAdmins(ctx context.Context, logins []string) (int, error) {
	n := 0
	for _, l := range logins {
		u, err := s.store.GetUserByLogin(ctx, l)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if err := s.store.AddAppointment(ctx, Appointment{UserID: u.ID, Role: RolePersonalData}); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 && s.appointed != nil {
		s.appointed()
	}
	return n, nil
}

// Export reads every row of opts.Kind and hands each to emit as its values
// in the order of ExportColumns[opts.Kind] (the slice is reused: emit must
// not keep it); it returns the number of rows. A failure of emit or of a
// read ends it with that error. A page is read as an administrator read
// and emitted after it, so a slow reader of the file holds no read slot.
func (s *Service) Export(ctx context.Context, opts ExportOptions, emit func(vals []string) error) (rows int, err error) {
	res, err := s.ExportCounted(ctx, opts, emit)
	return res.Rows, err
}

// ExportResult is what an export wrote.
type ExportResult struct {
	// Rows is the number of rows written.
	Rows int
	// MaskedOtherCentres counts the people of other centres written masked
	// in an export in clear: their ID and phone numbers do not open at
	// this centre (docs/operators.md "Sealed data between centres").
	MaskedOtherCentres int
}

// ExportCounted is Export, answering what it wrote besides the rows.
func (s *Service) ExportCounted(ctx context.Context, opts ExportOptions, emit func(vals []string) error) (res ExportResult, err error) {
	start := s.now()
	rows := 0
	defer func() { res.Rows = rows }()
	cols, ok := ExportColumns[opts.Kind]
	if !ok {
		return res, badRequest("kind must be users, orgs or links")
	}
	if opts.Reveal {
		ok, err := s.mayRevealPersonal(ctx)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, apierr.New(apierr.PermissionDenied, ReasonPersonalDataDenied,
				"exporting ID numbers and phone numbers in clear is not allowed for this administrator (it needs the personal_data_admin role); export without it for masked values")
		}
	}
	n := len(cols)
	page := &exportPage{vals: make([]string, 0, ExportPageSize*n)}
	defer func() {
		result, reason := "success", "OK"
		if err != nil {
			result, reason = "failure", "ERROR"
		}
		detail := map[string]string{"rows": fmt.Sprint(rows), "reveal_personal": fmt.Sprint(opts.Reveal)}
		if page.masked > 0 {
			detail["masked_other_centres"] = fmt.Sprint(page.masked)
		}
		res.MaskedOtherCentres = page.masked
		ev := s.audit(ctx, strings.TrimSuffix(opts.Kind, "s")+".export", "export:"+opts.Kind, "", result, reason, start, detail)
		if aerr := s.store.AppendEvents(context.WithoutCancel(ctx), []events.Event{ev}); aerr != nil && err == nil {
			err = aerr
		}
		s.kick()
	}()
	after := ""
	for {
		rerr := s.reads.run(ctx, func(ctx context.Context) error {
			return s.readExportPage(ctx, opts, after, page)
		})
		if rerr != nil {
			return res, rerr
		}
		for i := 0; i < len(page.vals); i += n {
			if err := emit(page.vals[i : i+n : i+n]); err != nil {
				return res, err
			}
			rows++
		}
		if page.read < ExportPageSize {
			return res, nil
		}
		after = page.last
	}
}

// exportPage is one page of an export: the values of its rows, one after
// the other (ExportColumns order), the page's last key and the number of
// rows read (the root org is read, not exported).
type exportPage struct {
	vals []string
	last string
	read int
	// masked counts the people of other centres exported masked in an
	// export in clear (their sealed data does not open here).
	masked int
}

// readExportPage reads the page after after into p.
func (s *Service) readExportPage(ctx context.Context, opts ExportOptions, after string, p *exportPage) error {
	p.vals, p.last, p.read = p.vals[:0], after, 0
	switch opts.Kind {
	case "orgs":
		list, err := s.store.ExportOrgs(ctx, after, ExportPageSize)
		if err != nil {
			return err
		}
		p.read = len(list)
		for _, e := range list {
			p.last = e.Org.Path
			if e.Org.ParentID == "" {
				continue
			}
			p.vals = append(p.vals, e.Org.Code, e.Org.Name, e.ParentCode, statusNames[e.Org.Status])
		}
	case "links":
		list, err := s.store.ExportLinks(ctx, after, ExportPageSize)
		if err != nil {
			return err
		}
		p.read = len(list)
		for _, e := range list {
			p.last = e.Link.ID
			p.vals = append(p.vals, e.LoginName, e.AppType, e.AppCode, e.Link.AppAccountID, statusNames[e.Link.Status])
		}
	default:
		list, err := s.store.ExportUsers(ctx, after, ExportPageSize)
		if err != nil {
			return err
		}
		p.read = len(list)
		for _, e := range list {
			u := e.User
			p.last = u.ID
			idNumber, phone := u.IDNumberMask, u.PhoneMask
			if opts.Reveal {
				id, ph, err := s.openPersonal(ctx, u)
				switch {
				case err == nil:
					idNumber, phone = id, ph
				case s.elsewhere(ctx, u):
					// a person of another centre whose sealed data this
					// centre's key ring does not open (docs: "Sealed data
					// between centres"): their masked copy (trial10 M1),
					// counted in the audit record (review sec15 L5)
					p.masked++
				default:
					return err
				}
			}
			p.vals = append(p.vals, u.LoginName, u.DisplayName, e.OrgCode, u.Email, phone, idTypeNames[u.IDType],
				idNumber, statusNames[u.Status], levelNames[u.MinAuthLevel], yesNoNames[u.PasswordOnly], userTypeNames[u.UserType.Norm()])
		}
	}
	return nil
}
