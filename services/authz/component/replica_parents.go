package component

import (
	"strings"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/authz/commands"
)

// replicaParents places, in authz's mirror of identity's org tree, the top
// org of another centre's subtree where this centre's identity holds it.
//
// Identity applies the top of a level-2 subtree, whose parent at its home
// (that centre's root) is not held here, under this centre's root
// (identity/sqlstore ReplicaWrite.AttachToRoot). Its local event names that
// root as the parent since 87abf9e; events written before name the parent
// at the home centre, which no event of this centre creates. Authz rebuilds
// its mirror from the whole stream at every start, so without this the
// bureaus of old events hung under an org of nothing, and an org grant on
// this centre's root did not reach their people after a restart.
//
// The rule is identity's: the org event of a change applied as a replica
// (subject uias.changes.identity.org.replica.<op>) of an org listed as
// another centre's subtree root, whose parent no org event of this stream
// created, hangs under this centre's root (the first org created without a
// parent). A live event already naming that root is unchanged, so a
// rebuild and a live apply give the same parents.
type replicaParents struct {
	homes *centre.Homes
	root  string
	held  map[string]struct{}
}

// newReplicaParents returns the placement of a centre's mirror (nil, which
// changes nothing, for a single centre).
func newReplicaParents(h *centre.Homes) *replicaParents {
	if h == nil {
		return nil
	}
	return &replicaParents{homes: h, held: map[string]struct{}{}}
}

// place corrects c, an identity event of subject, before it is applied,
// and records the orgs it creates. Events must come in stream order.
func (p *replicaParents) place(subject string, c *identityChange) {
	if p == nil || c.entity != "org" || (c.op != "created" && c.op != "moved") || c.parentID == nil {
		return
	}
	parent := *c.parentID
	if parent != "" && p.root != "" && isReplicaSubject(subject) {
		_, held := p.held[parent]
		if home, listed := p.homes.Subtrees[c.id]; !held && listed && home != p.homes.Self {
			root := p.root
			c.parentID = &root
		}
	}
	if c.op == "created" {
		p.held[c.id] = struct{}{}
		if parent == "" && p.root == "" {
			p.root = c.id
		}
	}
}

// isReplicaSubject reports whether subject is that of the local event of a
// change applied as a replica: uias.changes.<component>.<entity>.replica.<op>
// (identity and authz insert the same token).
func isReplicaSubject(subject string) bool {
	i := strings.LastIndexByte(subject, '.')
	return i > 0 && strings.HasSuffix(subject[:i], "."+commands.ReplicaToken)
}
