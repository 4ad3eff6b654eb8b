package server

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
)

// importServer implements ImportService (administrators only; see
// CallerAuth).
type importServer struct {
	identityv1.UnimplementedImportServiceServer
	guard *Guard
	svc   *identity.Service
}

var importKinds = map[identityv1.ImportKind]importfile.Kind{
	identityv1.ImportKind_IMPORT_KIND_USERS: importfile.Users,
	identityv1.ImportKind_IMPORT_KIND_ORGS:  importfile.Orgs,
	identityv1.ImportKind_IMPORT_KIND_LINKS: importfile.Links,
}

var importFormats = map[identityv1.ImportFormat]importfile.Format{
	identityv1.ImportFormat_IMPORT_FORMAT_XLSX:  importfile.XLSX,
	identityv1.ImportFormat_IMPORT_FORMAT_CSV:   importfile.CSV,
	identityv1.ImportFormat_IMPORT_FORMAT_JSONL: importfile.JSONL,
}

func badImport(msg string) error {
	return apierr.New(apierr.InvalidArgument, identity.ReasonImportBadFile, msg)
}

// Import implements ImportService: it spools the streamed file, then reads
// its rows, checks each row's fields with the rules of the matching create
// request (CreateUserRequest, ...) and hands them to the service.
func (s importServer) Import(stream identityv1.ImportService_ImportServer) error {
	ctx := stream.Context()
	if err := s.guard.Require(ctx, adminauth.ImportRun); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return badImport("the first message must carry the header")
	}
	kind, format := importKinds[h.GetKind()], importFormats[h.GetFormat()]
	f, err := os.CreateTemp("", "uias-import-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer f.Close()
	var size int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if m.GetHeader() != nil {
			return badImport("only the first message may carry a header")
		}
		size += int64(len(m.GetChunk()))
		if limit := s.svc.ImportMaxBytes(); size > limit {
			return apierr.New(apierr.InvalidArgument, identity.ReasonImportTooLarge,
				fmt.Sprintf("the file is larger than %s (identity.import_max_bytes): split it", byteSize(limit)))
		}
		if _, err := f.Write(m.GetChunk()); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	r, err := importfile.Open(f.Name(), format, kind)
	if err != nil {
		var he *importfile.ErrHeader
		if errors.As(err, &he) {
			return badImport(he.Msg)
		}
		return err
	}
	defer func() { _ = r.Close() }()
	next := func() (*identity.ImportRow, bool, error) {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		row := &identity.ImportRow{Row: rec.Row, Sheet: rec.Sheet, Fields: rec.Fields}
		if field, msg := importfile.Problem(rec, kind); msg != "" {
			row.Problem = &identity.RowError{Row: rec.Row, Field: field, Reason: identity.ReasonImportBadField, Message: field + " " + msg}
			return row, true, nil
		}
		if err := grpcx.ValidateRequest(rowRequest(kind, rec.Fields)); err != nil {
			e, _ := apierr.As(err)
			row.Problem = &identity.RowError{Row: rec.Row, Reason: identity.ReasonImportBadField}
			if e != nil {
				row.Problem.Field, row.Problem.Message = fieldOfRequest(e.Meta[grpcx.MetaField]), e.Message
			}
		}
		return row, true, nil
	}
	rep, err := s.svc.Import(ctx, identity.ImportOptions{Kind: string(kind), ImportID: h.GetImportId(), DryRun: h.GetDryRun()}, next)
	if err != nil {
		return err
	}
	out := &identityv1.ImportReport{ImportId: rep.ImportID, DryRun: rep.DryRun, Rows: int64(rep.Rows),
		Written: int64(rep.Written), Skipped: int64(rep.Skipped), Failed: int64(rep.Failed)}
	for _, e := range rep.Errors {
		out.Errors = append(out.Errors, &identityv1.ImportRowError{Row: int64(e.Row), Sheet: e.Sheet, Field: e.Field, Reason: e.Reason, Message: e.Message})
	}
	return stream.SendAndClose(out)
}

// rowRequest is the create request whose rules check a row's fields (the
// same rules as a single create through the API).
func rowRequest(k importfile.Kind, f map[string]string) any {
	switch k {
	case importfile.Orgs:
		return &identityv1.CreateOrgRequest{Code: f["code"], Name: f["name"], ParentId: f["parent_code"]}
	case importfile.Links:
		return &identityv1.CreateAccountLinkRequest{UserId: f["login_name"], AppId: f["app_code"], AppAccountId: f["app_account"]}
	}
	return &identityv1.CreateUserRequest{LoginName: f["login_name"], DisplayName: f["display_name"], IdNumber: f["id_number"],
		Phone: f["phone"], Email: f["email"], OrgId: f["org_code"], Password: f["password_hash"]}
}

// fieldOfRequest names the file's column of a create request's field.
func fieldOfRequest(field string) string {
	switch field {
	case "org_id":
		return "org_code"
	case "parent_id":
		return "parent_code"
	case "user_id":
		return "login_name"
	case "app_id":
		return "app_code"
	case "app_account_id":
		return "app_account"
	case "password":
		return "password_hash"
	}
	return field
}

// byteSize says n bytes in the largest whole unit.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
