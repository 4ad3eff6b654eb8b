package dataset

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/uias/uias/pkg/store"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// Changes returns the data set's objects as put changes with Rev 0 (a
// snapshot load), in the order the store hands them out.
func (d *Data) Changes() []authz.Change {
	out := make([]authz.Change, 0, len(d.Resources)+len(d.Roles)+len(d.Grants))
	add := func(obj, id string, v any) {
		b, _ := json.Marshal(v)
		out = append(out, authz.Change{Obj: obj, Op: authz.OpPut, ID: id, Data: b})
	}
	for _, r := range d.Resources {
		add(authz.ObjResource, index.ResourceID(r.App, r.Code), r)
	}
	for _, r := range d.Roles {
		add(authz.ObjRole, r.ID, r)
	}
	for _, g := range d.Grants {
		add(authz.ObjGrant, g.ID, g)
	}
	return out
}

// Mirror puts the data set's org tree and group members into idx (what
// identity's events bring in production).
func (d *Data) Mirror(idx *index.Index) {
	for o, p := range d.OrgParent {
		idx.SetOrgParent(o, p)
	}
	for u, o := range d.UserOrg {
		idx.SetUserOrg(u, o)
	}
	for g, us := range d.GroupUsers {
		for _, u := range us {
			idx.SetGroupMember(g, u, true)
		}
	}
}

// Index builds an index of the data set.
func (d *Data) Index() (*index.Index, error) {
	idx := index.New()
	d.Mirror(idx)
	if err := idx.Apply(d.Changes()...); err != nil {
		return nil, err
	}
	idx.SetRevision(1)
	idx.Rebuild()
	return idx, nil
}

// Query is c as an index query.
func (c Check) Query() index.Query {
	return index.Query{Person: c.Person, App: c.App, Resource: c.Resource, Operation: c.Operation}
}

// WriteStore puts the data set into an empty, migrated authz store as a
// million single writes would leave it (the objects, at revision 1, without
// their change log): what a replica then loads at start.
func (d *Data) WriteStore(ctx context.Context, db *store.DB) error {
	chs := d.Changes()
	return db.InTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, db.Rebind(`INSERT INTO authz_objects (obj, id, data, rev) VALUES (?, ?, ?, 1)`))
		if err != nil {
			return err
		}
		defer func() { _ = st.Close() }()
		for i, c := range chs {
			if _, err := st.ExecContext(ctx, c.Obj, c.ID, string(c.Data)); err != nil {
				return err
			}
			chs[i].Data = nil // let it go
		}
		_, err = tx.ExecContext(ctx, `UPDATE authz_revision SET rev = 1 WHERE id = 1`)
		return err
	})
}
