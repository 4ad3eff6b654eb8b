package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
)

// Reasons of provisioning's errors.
const (
	// ReasonBadSubscription: a subscription field is refused.
	ReasonBadSubscription = "SYNC_BAD_SUBSCRIPTION"
	// ReasonNoSubscription: a batch or retry names no subscription that
	// exists and is enabled.
	ReasonNoSubscription = "SYNC_NO_SUBSCRIPTION"
	// ReasonBadReport: a report's days or format are refused.
	ReasonBadReport = "SYNC_BAD_REPORT"
	// ReasonBadBatch: a batch's narrowing is refused.
	ReasonBadBatch = "SYNC_BAD_BATCH"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonBadSubscription, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "a provisioning subscription was refused: the message names the field (selection, transport, endpoint, secret...)"},
		apierr.Reason{Name: ReasonNoSubscription, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "a provisioning batch named no enabled subscription (give --app or --subscription of one that exists)"},
		apierr.Reason{Name: ReasonBadReport, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "a delivery report was asked with days that are not YYYY-MM-DD or a format other than csv or xlsx"},
		apierr.Reason{Name: ReasonBadBatch, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "a provisioning batch was narrowed in a way that cannot be delivered (a batch of roles narrowed by org)"},
	)
}

// Service is what the admin API does with subscriptions.
type Service struct {
	Store  Store
	Engine *Engine // nil: batches are refused (no engine running)
	Now    func() time.Time
	// AppExists says whether an application is registered in identity
	// (nil: not checked). A subscription for an application that does not
	// exist is refused: nothing would ever log in to receive it.
	AppExists func(ctx context.Context, id string) (bool, error)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func badSub(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return apierr.New(apierr.InvalidArgument, ReasonBadSubscription, "subscription "+ve.Error())
	}
	return err
}

func normalize(sub *Subscription) {
	if sub.Strategy == "" {
		sub.Strategy = Immediate
	}
	sub.Transport = strings.ToLower(sub.Transport)
	if sub.Settings == nil {
		sub.Settings = map[string]string{}
	}
}

// Create stores a new subscription.
func (s *Service) Create(ctx context.Context, sub *Subscription) (*Subscription, error) {
	normalize(sub)
	sub.ID = ids.New()
	sub.CreatedAt = s.now()
	sub.UpdatedAt = sub.CreatedAt
	if err := sub.Validate(); err != nil {
		return nil, badSub(err)
	}
	if err := sub.CheckInClear(); err != nil {
		return nil, badSub(err)
	}
	if err := sub.CheckFiles(); err != nil {
		return nil, badSub(err)
	}
	if s.AppExists != nil {
		ok, err := s.AppExists(ctx, sub.App)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, store.ErrNotFound.WithMessage(fmt.Sprintf("application %q not found: a subscription is for a registered application (uias ctl app list shows the App_IDs)", sub.App))
		}
	}
	if err := s.Store.CreateSubscription(ctx, sub); err != nil {
		return nil, err
	}
	if s.Engine != nil && sub.Enabled {
		// the whole selection now; if this fails (or the process stops),
		// the engine's supervisor enqueues it (InitialBatch stays "")
		if _, _, err := s.Engine.Initial(ctx, sub); err != nil {
			s.Engine.o.Logger.Warn("provisioning: initial delivery not enqueued at creation; the engine tries again",
				zap.String("subscription", sub.ID), zap.Error(err))
		}
	}
	s.kick()
	return sub, nil
}

// Update replaces a subscription's settings (an empty secret keeps it).
// An edit of an enabled subscription's selection is delivered at once: what
// came into the selection is upserted, what left it is deleted (or, for
// people, disabled: setting on_leave), in the transaction that stores the
// edit, so that no change is projected against a selection the business
// system does not have. Turning DeliverRoles on or off is delivered the
// same way: the selected people again (with or without their roles), then
// the roles (or their removal).
func (s *Service) Update(ctx context.Context, sub *Subscription) (*Subscription, error) {
	cur, err := s.Store.GetSubscription(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	normalize(sub)
	sub.App, sub.CreatedAt, sub.LastBatchAt = cur.App, cur.CreatedAt, cur.LastBatchAt
	sub.UpdatedAt = s.now()
	if !sub.UpdatedAt.After(cur.UpdatedAt) {
		sub.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond)
	}
	check := *sub
	if check.Secret == "" {
		check.Secret = cur.Secret
	}
	if err := check.Validate(); err != nil {
		return nil, badSub(err)
	}
	if cur.DeliverRoles && cur.Transport == SCIM && check.Transport == SCIM &&
		(cur.Settings[SettingRolesAs] != check.Settings[SettingRolesAs] ||
			cur.Settings[SettingRoleGroupPrefix] != check.Settings[SettingRoleGroupPrefix]) {
		// the roles delivered one way would stay at the business system,
		// never updated nor removed (an edit turning deliver_roles off is
		// delivered with the edited settings)
		return nil, badSub(&ValidationError{Field: "settings." + SettingRolesAs, Msg: "and role_group_prefix cannot change while " +
			"deliver_roles is on (the roles delivered the old way would stay): turn deliver_roles off first (which withdraws " +
			"them), then change them and turn it on again"})
	}
	if check.Endpoint != cur.Endpoint || check.Transport != cur.Transport {
		if err := check.CheckInClear(); err != nil {
			return nil, badSub(err)
		}
	}
	if check.Transport != cur.Transport || check.Settings[SettingCAFile] != cur.Settings[SettingCAFile] {
		if err := check.CheckFiles(); err != nil {
			return nil, badSub(err)
		}
	}
	batchID := ids.New()
	n := 0
	err = s.Store.InTx(ctx, func(tx Tx) error {
		n = 0
		if err := tx.Lock(); err != nil {
			return err
		}
		subs, err := tx.Subscriptions()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(subs, func(x *Subscription) bool { return x.ID == sub.ID })
		if i < 0 {
			return store.NotFound("subscription " + sub.ID)
		}
		before := subs[i]
		if err := tx.UpdateSubscription(sub); err != nil {
			return err
		}
		sub.InitialBatch = before.InitialBatch
		// an initial batch still to be enqueued takes the new selection;
		// a disabled subscription gets nothing until it is enabled
		if before.Enabled && sub.Enabled && before.InitialBatch != "" && (!SameSelection(before.Selection, sub.Selection) ||
			before.DeliverRoles != sub.DeliverRoles) {
			n, err = EnqueueEdit(tx, before, sub, batchID, sub.UpdatedAt)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.logger().Info("provisioning: the edited selection's changes enqueued", zap.String("subscription", sub.ID),
			zap.String("app", sub.App), zap.String("batch", batchID), zap.Int("deliveries", n))
	}
	s.kick()
	sub.Secret = check.Secret
	return sub, nil
}

func (s *Service) logger() *zap.Logger {
	if s.Engine != nil {
		return s.Engine.o.Logger
	}
	return zap.NewNop()
}

// Delete removes a subscription and its queue.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.Store.DeleteSubscription(ctx, id); err != nil {
		return err
	}
	s.kick()
	return nil
}

func (s *Service) kick() {
	if s.Engine != nil {
		s.Engine.Kick()
	}
}

// StartBatch enqueues the selection of one subscription (subID) or of every
// enabled subscription of app, narrowed by f. A batch of roles
// (f.RolesOnly) goes to those that deliver roles, and is refused when
// none does.
func (s *Service) StartBatch(ctx context.Context, app, subID string, f Filter) (string, int, []string, error) {
	if f.RolesOnly && f.Org != "" {
		return "", 0, nil, apierr.New(apierr.InvalidArgument, ReasonBadBatch, "a batch of roles is not narrowed by org: "+
			"a role's members are all the selected people who hold it (give roles_only with role, or org without roles_only)")
	}
	var subs []*Subscription
	switch {
	case subID != "":
		sub, err := s.Store.GetSubscription(ctx, subID)
		if err != nil {
			return "", 0, nil, err
		}
		if app != "" && sub.App != app {
			return "", 0, nil, apierr.New(apierr.FailedPrecondition, ReasonNoSubscription,
				"subscription "+subID+" is not a subscription of application "+app)
		}
		subs = append(subs, sub)
	case app != "":
		all, err := s.Store.ListSubscriptions(ctx, app)
		if err != nil {
			return "", 0, nil, err
		}
		for _, sub := range all {
			if sub.Enabled {
				subs = append(subs, sub)
			}
		}
	default:
		return "", 0, nil, apierr.New(apierr.FailedPrecondition, ReasonNoSubscription, "a batch needs an application or a subscription")
	}
	if len(subs) == 0 {
		return "", 0, nil, apierr.New(apierr.FailedPrecondition, ReasonNoSubscription,
			"application "+app+" has no enabled subscription")
	}
	if f.RolesOnly {
		subs = slices.DeleteFunc(subs, func(x *Subscription) bool { return !x.DeliverRoles })
		if len(subs) == 0 {
			what := "application " + app
			if subID != "" {
				what = "subscription " + subID
			}
			return "", 0, nil, apierr.New(apierr.FailedPrecondition, ReasonNoSubscription, what+" delivers no roles "+
				"(deliver_roles is off): a batch of roles has nothing to deliver")
		}
	}
	if s.Engine == nil {
		return "", 0, nil, apierr.ErrUnavailable.WithMessage("provisioning is not running in this process")
	}
	id, n, err := s.Engine.EnqueueBatch(ctx, subs, f)
	names := make([]string, len(subs))
	for i, sub := range subs {
		names[i] = sub.ID
	}
	return id, n, names, err
}

// Retry puts dead letters back in their queues.
func (s *Service) Retry(ctx context.Context, f DeliveryFilter) (int64, error) {
	n, err := s.Store.Retry(ctx, f, s.now(), 0)
	if err == nil && n > 0 {
		s.kick()
	}
	return n, err
}

// ReportDays parses a report's days (YYYY-MM-DD, both included; default:
// the 30 days up to today) into [from, to).
func ReportDays(fromDay, toDay string, now time.Time) (time.Time, time.Time, error) {
	bad := func() error {
		return apierr.New(apierr.InvalidArgument, ReasonBadReport, "report days must be YYYY-MM-DD with from not after to")
	}
	to := now.UTC().Truncate(24 * time.Hour)
	if toDay != "" {
		t, err := time.Parse(time.DateOnly, toDay)
		if err != nil {
			return time.Time{}, time.Time{}, bad()
		}
		to = t
	}
	from := to.AddDate(0, 0, -29)
	if fromDay != "" {
		t, err := time.Parse(time.DateOnly, fromDay)
		if err != nil {
			return time.Time{}, time.Time{}, bad()
		}
		from = t
	}
	if from.After(to) || to.Sub(from) > 3660*24*time.Hour {
		return time.Time{}, time.Time{}, bad()
	}
	return from, to.AddDate(0, 0, 1), nil
}

// Status returns each subscription's queue.
func (s *Service) Status(ctx context.Context) ([]SubStatus, error) {
	subs, err := s.Store.ListSubscriptions(ctx, "")
	if err != nil {
		return nil, err
	}
	q, err := s.Store.Queues(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SubStatus, 0, len(subs))
	for _, sub := range subs {
		st := q[sub.ID]
		st.Subscription = *sub
		st.Subscription.Secret = ""
		out = append(out, st)
	}
	return out, nil
}
