package console

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/url"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// Certificates (the maritime design's certificate management, 2.1.6.2:
// 机构信息管理、用户信息管理、授权管理、证书管理): a person's bound
// certificates on their page (bind one from its PEM, unbind one), and the
// CA's certificates bound in bulk to the people they name
// (AdminService.BindCertificates, ADR 0041).

// personCerts is the certificates part of a person's page.
type personCerts struct {
	Certs []*identityv1.UserCertificate
	Error string
}

func (h *Handler) certsOf(r *http.Request, s *session, d *pageData, id string) *personCerts {
	ctx, cancel := h.partCtx(r, s)
	defer cancel()
	res, err := h.o.Admin.ListUserCertificates(ctx, &identityv1.ListUserCertificatesRequest{UserId: id})
	if err != nil {
		return &personCerts{Error: message(statusOf(err), d)}
	}
	return &personCerts{Certs: res.GetCertificates()}
}

// maxCertUpload bounds a bulk upload (500 certificates of a few KiB); a
// request over it (with its form's other fields, 1 MiB more) is answered
// 413 with the bound (console.go, signed).
const maxCertUpload = 4 << 20

// pemCerts returns the DER of every CERTIFICATE block of b.
func pemCerts(b []byte) [][]byte {
	var out [][]byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
}

// certAction binds a certificate (pasted PEM) to the person, or unbinds one.
func (h *Handler) certAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := h.data(r, s, "people")
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	action := r.PathValue("action")
	switch action {
	case "bind":
		ders := pemCerts([]byte(r.PostForm.Get("certificate")))
		if len(ders) != 1 {
			// one certificate a binding: several are not bound silently
			// as their first (review sec30c L3)
			d.Error = d.T("badPEM")
			if len(ders) > 1 {
				d.Error = d.T("onePEM")
			}
			h.renderPerson(w, r, s, &d, id, http.StatusBadRequest)
			return
		}
		_, err = h.o.Admin.BindUserCertificate(ctx, &identityv1.BindUserCertificateRequest{UserId: id, Certificate: ders[0]})
	case "unbind":
		_, err = h.o.Admin.UnbindUserCertificate(ctx, &identityv1.UnbindUserCertificateRequest{UserId: id, Sha256: r.PostForm.Get("sha256")})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.personRefused(w, r, s, &d, id, err)
		return
	}
	h.redirectDone(w, r, "people/"+url.PathEscape(id), "cert."+action)
}

// renderPerson shows person id's page with d's error or note.
func (h *Handler) renderPerson(w http.ResponseWriter, r *http.Request, s *session, d *pageData, id string, code int) {
	pctx, pcancel := h.partCtx(r, s)
	u, err := h.o.Admin.GetUser(pctx, &identityv1.GetUserRequest{Id: id})
	pcancel()
	if err != nil {
		d.Page = &personPage{}
		h.failed(w, r, err, "person", d)
		return
	}
	d.Page = h.personPageOf(r, s, d, u)
	h.render(w, r, code, "person", *d)
}

// bulkCertsPage is the bulk binding page and its answer.
type bulkCertsPage struct {
	DryRun bool
	Lines  []*identityv1.BindCertificatesResponse_Line
	Bound  int32
	Done   bool
}

func (h *Handler) certsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "certs")
	d.Page = &bulkCertsPage{DryRun: true}
	h.render(w, r, http.StatusOK, "certs", d)
}

// bindCerts is the bulk binding's POST: a PEM file (multipart) or pasted
// PEM, bound (or with dry_run, tried) through BindCertificates.
func (h *Handler) bindCerts(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "certs")
	p := &bulkCertsPage{DryRun: r.PostForm.Get("dry_run") != ""}
	d.Page = p
	data := []byte(r.PostForm.Get("certificates"))
	if f, _, err := r.FormFile("file"); err == nil {
		b, rerr := io.ReadAll(io.LimitReader(f, maxCertUpload+1))
		_ = f.Close()
		if rerr != nil || len(b) > maxCertUpload {
			d.Error = d.T("certsTooBig")
			h.render(w, r, http.StatusBadRequest, "certs", d)
			return
		}
		data = append(data, '\n')
		data = append(data, b...)
	}
	ders := pemCerts(data)
	switch {
	case len(ders) == 0:
		d.Error = d.T("badPEM")
		h.render(w, r, http.StatusBadRequest, "certs", d)
		return
	case len(ders) > 500:
		d.Error = d.T("certsTooMany")
		h.render(w, r, http.StatusBadRequest, "certs", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Admin.BindCertificates(ctx, &identityv1.BindCertificatesRequest{Certificates: ders, DryRun: p.DryRun})
	if err != nil {
		h.failed(w, r, err, "certs", &d)
		return
	}
	p.Lines, p.Bound, p.Done = res.GetLines(), res.GetBound(), true
	h.render(w, r, http.StatusOK, "certs", d)
}
