package component

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/uias/uias/pkg/cache"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// AttributeChangesSubjects are identity's CHANGES events that may change
// what a validation releases: the person (user), their groups (group,
// whose member events name the person), their account links (link), and
// org names (org).
var AttributeChangesSubjects = []string{"uias.changes.identity.user.>", "uias.changes.identity.group.>",
	"uias.changes.identity.link.>", "uias.changes.identity.org.>"}

// attributeCache answers the attributes a validation releases
// (server.Attributes) from identity's SSOService.PersonAttributes, and
// keeps each answer for ticket.attribute_cache. Every instance listens to
// identity's CHANGES events (AttributeChangesSubjects): an event that names
// a person drops that person's answers at once, any other (an org renamed,
// a group changed) drops all. The TTL bounds what an event lost while NATS
// was away leaves stale.
type attributeCache struct {
	sso identityv1.SSOServiceClient
	ttl time.Duration
	c   *cache.TTL[personAttributes] // by user id
	now func() time.Time

	mu       sync.Mutex
	inflight map[string]*attributeCall // by user id and app id: one question to identity at a time
}

// attributeCall is a question to identity others wait for.
type attributeCall struct {
	done chan struct{}
	a    *ticketv1.PersonAttributes
	err  error
}

// personAttributes are a person's answers by application id.
type personAttributes map[string]fetchedAttributes

type fetchedAttributes struct {
	a  *ticketv1.PersonAttributes
	at time.Time
}

func newAttributeCache(sso identityv1.SSOServiceClient, ttl time.Duration) *attributeCache {
	return &attributeCache{sso: sso, ttl: ttl, c: cache.NewTTL[personAttributes](ttl, 0), now: time.Now}
}

// Attributes implements server.Attributes.
func (c *attributeCache) Attributes(ctx context.Context, userID, appID string) (*ticketv1.PersonAttributes, error) {
	now := c.now()
	cached, _ := c.c.Get(userID, now)
	if f, ok := cached[appID]; ok && now.Sub(f.at) < c.ttl {
		return f.a, nil
	}
	// Validations of one person for one application that miss together
	// (at the start, or when the answer expires) ask identity once.
	key := userID + "\x00" + appID
	c.mu.Lock()
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.a, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &attributeCall{done: make(chan struct{})}
	if c.inflight == nil {
		c.inflight = map[string]*attributeCall{}
	}
	c.inflight[key] = call
	c.mu.Unlock()
	call.a, call.err = c.fetch(ctx, userID, appID, cached, now)
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.a, call.err
}

// fetch asks identity and keeps the answer.
func (c *attributeCache) fetch(ctx context.Context, userID, appID string, cached personAttributes, now time.Time) (*ticketv1.PersonAttributes, error) {
	gen := c.c.Generation()
	res, err := c.sso.PersonAttributes(ctx, &identityv1.PersonAttributesRequest{UserId: userID, AppId: appID})
	if err != nil {
		return nil, domainErr(err)
	}
	a := &ticketv1.PersonAttributes{Login: res.GetLogin(), DisplayName: res.GetDisplayName(), OrgId: res.GetOrgId(),
		OrgName: res.GetOrgName(), AppAccountId: res.GetAppAccountId(), Groups: res.GetGroups(),
		UserType: ticket.UserTypeName(int32(res.GetUserType()))}
	if c.ttl > 0 {
		next := make(personAttributes, len(cached)+1)
		for app, f := range cached {
			if now.Sub(f.at) < c.ttl {
				next[app] = f
			}
		}
		next[appID] = fetchedAttributes{a: a, at: now}
		c.c.PutIfCurrent(userID, next, gen, now)
	}
	return a, nil
}

// changed handles a CHANGES event of identity.
func (c *attributeCache) changed(m *nats.Msg) {
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			UserID string `json:"user_id"`
		} `json:"data"`
	}
	err := json.Unmarshal(m.Data, &ev)
	switch {
	case err != nil, strings.HasSuffix(m.Subject, ".imported"): // an import names many
		c.c.Clear()
	case ev.Data.UserID != "": // group members, account links
		c.c.Drop(ev.Data.UserID)
	case ev.ID != "" && strings.HasPrefix(m.Subject, "uias.changes.identity.user."):
		c.c.Drop(ev.ID)
	default:
		c.c.Clear()
	}
}

// subscribe listens to AttributeChangesSubjects on nc (every instance).
func (c *attributeCache) subscribe(nc *nats.Conn) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, subj := range AttributeChangesSubjects {
		s, err := nc.Subscribe(subj, c.changed)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, s)
	}
	return subs, nil
}
