package identity

import (
	"context"
	"encoding/json"
	"errors"
)

// View is one object's current state as identity's CHANGES events carry it
// (the data of a "created" event).
type View struct {
	ID   string
	Data json.RawMessage
}

// Views returns the current state of the objects of entity (user, org,
// group, link or app: no secret of an application) with ids, in that order, leaving out the ids that do not
// exist. Components read them where an event carries ids only (an
// import's batched "imported" change). Personal data is masked as in the
// events.
func (s *Service) Views(ctx context.Context, entity string, ids []string) ([]View, error) {
	var get func(id string) (any, error)
	switch entity {
	case "user":
		get = func(id string) (any, error) {
			u, err := s.store.GetUser(ctx, id)
			if err != nil {
				return nil, err
			}
			return userView(u), nil
		}
	case "org":
		get = func(id string) (any, error) {
			o, err := s.store.GetOrg(ctx, id)
			if err != nil {
				return nil, err
			}
			return map[string]any{"code": o.Code, "name": o.Name, "parent_id": o.ParentID, "status": o.Status}, nil
		}
	case "group":
		get = func(id string) (any, error) {
			g, err := s.store.GetGroup(ctx, id)
			if err != nil {
				return nil, err
			}
			return map[string]any{"code": g.Code, "name": g.Name, "org_id": g.OrgID}, nil
		}
	case "link":
		get = func(id string) (any, error) {
			l, err := s.store.GetLink(ctx, id)
			if err != nil {
				return nil, err
			}
			return map[string]any{"user_id": l.UserID, "app_id": l.AppID, "app_account_id": l.AppAccountID}, nil
		}
	case "app":
		get = func(id string) (any, error) {
			a, err := s.store.GetApp(ctx, id)
			if err != nil {
				return nil, err
			}
			return appView(a), nil
		}
	default:
		return nil, badRequest("entity must be user, org, group, link or app, got %q", entity)
	}
	out := make([]View, 0, len(ids))
	for _, id := range ids {
		v, err := get(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out = append(out, View{ID: id, Data: b})
	}
	return out, nil
}
