package identity

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
)

// App_Secret validity periods (JR/T 0185-2020 7.3.4: keys expire and are
// renewed periodically), as Keycloak's client secret rotation policy:
//
//   - A secret's expiry is fixed when it is issued (CreateApp,
//     RotateAppSecret): its issue time plus the lifetime in force then,
//     the application's own (App.SecretLifetime) or else the server
//     default (Config.AppSecretLifetime, identity.app_secret_lifetime);
//     neither: it does not expire. A later change of the server default
//     applies to the secrets issued after it.
//   - Changing an application's own lifetime (UpdateApp
//     secret_lifetime_seconds, 0 back to the default) recomputes its
//     current secret's expiry from the secret's issue time.
//   - Past its expiry the right secret is refused with APP_SECRET_EXPIRED
//     (pkg/caller, after the secret was verified). The previous secret of
//     a rotation works until the end of its overlap, which never goes
//     beyond its own expiry: a rotation does not revive an expired secret.
//   - Secrets issued before migration 0051 count as issued at the upgrade
//     and keep no expiry.

// MaxSecretLifetime is the longest App_Secret lifetime accepted (ten
// years): anything longer is a mistake (seconds taken for days).
const MaxSecretLifetime = 3650 * 24 * time.Hour

// SecretWarnWithin is how long before its secret expires an application
// is warned about (logged daily, counted by the gauge).
const SecretWarnWithin = 14 * 24 * time.Hour

// checkSecretLifetime checks a lifetime given as field.
func checkSecretLifetime(field string, d time.Duration) error {
	if d < 0 || d > MaxSecretLifetime {
		return badField(field, "%s must be between 0 (the server default) and %d (ten years) seconds, got %d",
			field, int64(MaxSecretLifetime/time.Second), int64(d/time.Second))
	}
	if d%time.Second != 0 {
		return badField(field, "%s must be whole seconds", field)
	}
	return nil
}

// secretLifetime is the lifetime in force for a's secrets: its own, or the
// server default (zero: they do not expire).
func (s *Service) secretLifetime(a *App) time.Duration {
	if a.SecretLifetime > 0 {
		return a.SecretLifetime
	}
	if a.SecurityLevel == 2 && s.cfg.AppSecretLifetimeA2 > 0 {
		return s.cfg.AppSecretLifetimeA2
	}
	return s.cfg.AppSecretLifetime
}

// secretExpiry sets a's secret expiry from its issue time and the lifetime
// in force now.
func (s *Service) secretExpiry(a *App) {
	a.SecretExpires = time.Time{}
	if d := s.secretLifetime(a); d > 0 {
		a.SecretExpires = a.SecretIssuedAt.Add(d)
	}
}

// relife gives a the secret lifetime d (zero: the server default) at now:
// the current secret's expiry is recomputed from when it was issued. A
// lifetime that would end a working secret at once is refused: the
// application's callers would be cut off without warning (rotate first;
// a compromised secret is ended by a rotation without overlap). A longer
// lifetime given to an expired secret makes it work again until the new
// expiry: an administrator's deliberate step (an application down while a
// rotation is arranged), audited with the new expiry.
func (s *Service) relife(a *App, d time.Duration, now time.Time) error {
	if a.SecretIssuedAt.IsZero() {
		a.SecretIssuedAt = a.UpdatedAt // not expected: every secret has its issue time
	}
	wasExpired := !a.SecretExpires.IsZero() && !now.Before(a.SecretExpires)
	before := *a
	a.SecretLifetime = d
	s.secretExpiry(a)
	if !wasExpired && !a.SecretExpires.IsZero() && !now.Before(a.SecretExpires) {
		inForce := fmt.Sprint(s.secretLifetime(a))
		if d == 0 {
			inForce += " (the server default, identity.app_secret_lifetime)"
		}
		*a = before
		return apierr.New(apierr.FailedPrecondition, ReasonSecretLifetimeTooShort, fmt.Sprintf(
			"a secret lifetime of %s would end the application's secret at once (it was issued %s ago, at %s): "+
				"rotate the secret first (uias ctl app rotate-secret %s), or give a longer lifetime",
			inForce, now.Sub(a.SecretIssuedAt).Round(time.Second), a.SecretIssuedAt.UTC().Format(time.RFC3339), a.ID)).
			WithMeta(apierr.MetaField, "secret_lifetime_seconds")
	}
	return nil
}

// issueSecret records that a's current secret was issued at.
func (s *Service) issueSecret(a *App, at time.Time) {
	a.SecretIssuedAt = at
	s.secretExpiry(a)
}

// appFilter turns f's SecretExpiresWithin into SecretExpiresBefore.
func (s *Service) appFilter(f AppFilter) (AppFilter, error) {
	if f.SecretExpiresWithin == nil {
		return f, nil
	}
	d := *f.SecretExpiresWithin
	if d < 0 || d > MaxSecretLifetime {
		return f, badField("secret_expires_within_seconds",
			"secret_expires_within_seconds must be between 0 (expired secrets only) and %d (ten years), got %d",
			int64(MaxSecretLifetime/time.Second), int64(d/time.Second))
	}
	f.SecretExpiresBefore, f.SecretExpiresWithin = s.now().Add(d), nil
	return f, nil
}

// SecretExpiryCounts are the applications homed at this centre whose
// secret expires within SecretWarnWithin (Expiring, the expired included)
// and those already expired (Expired), at the last WarnExpiringSecrets.
type SecretExpiryCounts struct {
	Expiring, Expired int64
	// KeysExpiring and KeysExpired count the request signing keys of
	// those applications the same way (a key expiring within
	// SecretWarnWithin, the expired included; the expired).
	KeysExpiring, KeysExpired int64
	// Checked is false until the first check ended.
	Checked bool
}

// secretCounts holds the last SecretExpiryCounts.
type secretCounts struct {
	expiring, expired         atomic.Int64
	keysExpiring, keysExpired atomic.Int64
	checked                   atomic.Bool
	// recount wakes RunSecretExpiryWarnings (secretsChanged)
	recount chan struct{}
}

// SecretExpiry returns the counts of the last WarnExpiringSecrets (the
// component's gauges read them).
func (s *Service) SecretExpiry() SecretExpiryCounts {
	return SecretExpiryCounts{Expiring: s.secrets.expiring.Load(), Expired: s.secrets.expired.Load(),
		KeysExpiring: s.secrets.keysExpiring.Load(), KeysExpired: s.secrets.keysExpired.Load(), Checked: s.secrets.checked.Load()}
}

// WarnExpiringSecrets logs one warning per application homed at this
// centre whose secret expires within SecretWarnWithin or has expired (its
// App_ID, type, code and expiry; never a secret), and updates the counts
// of SecretExpiry. Replicas of other centres' applications are left to
// their home centre, where an administrator rotates them.
func (s *Service) WarnExpiringSecrets(ctx context.Context) error {
	return s.checkExpiringSecrets(ctx, true)
}

// CountExpiringSecrets updates the counts of SecretExpiry without logging
// (the gauges follow rotations and expiries within minutes; the warnings
// are daily).
func (s *Service) CountExpiringSecrets(ctx context.Context) error {
	return s.checkExpiringSecrets(ctx, false)
}

func (s *Service) checkExpiringSecrets(ctx context.Context, warn bool) error {
	now := s.now()
	var expiring, expired int64
	err := eachPage(ctx, func(p Page) ([]*App, string, error) {
		return s.store.ListApps(ctx, AppFilter{SecretExpiresBefore: now.Add(SecretWarnWithin)}, p)
	}, func(a *App) {
		if a.Home != "" {
			return
		}
		expiring++
		isExpired := !now.Before(a.SecretExpires)
		if isExpired {
			expired++
		}
		if !warn {
			return
		}
		fields := []zap.Field{zap.String("app_id", a.ID), zap.String("app_type", a.Type), zap.String("app_code", a.Code),
			zap.Time("secret_expire_time", a.SecretExpires.UTC())}
		if isExpired {
			s.log.Warn("application secret has expired: its callers are refused (APP_SECRET_EXPIRED) until an administrator "+
				"rotates it (uias ctl app rotate-secret)", fields...)
			return
		}
		s.log.Warn("application secret expires soon: rotate it before then (uias ctl app rotate-secret)",
			append(fields, zap.Duration("expires_in", a.SecretExpires.Sub(now).Round(time.Minute)))...)
	})
	if err != nil {
		return err
	}
	keysExpiring, keysExpired, err := s.checkExpiringKeys(ctx, now, warn)
	if err != nil {
		return err
	}
	s.secrets.expiring.Store(expiring)
	s.secrets.expired.Store(expired)
	s.secrets.keysExpiring.Store(keysExpiring)
	s.secrets.keysExpired.Store(keysExpired)
	s.secrets.checked.Store(true)
	return nil
}

// checkExpiringKeys counts (and with warn logs) the request signing keys
// of the applications homed here that expire within SecretWarnWithin or
// have expired: the App_ID, the key's thumbprint and expiry, never more.
func (s *Service) checkExpiringKeys(ctx context.Context, now time.Time, warn bool) (expiring, expired int64, err error) {
	err = eachPage(ctx, func(p Page) ([]*App, string, error) {
		return s.store.ListApps(ctx, AppFilter{}, p)
	}, func(a *App) {
		if a.Home != "" {
			return
		}
		for _, k := range a.ParsedSigningKeys() {
			if k.NotAfter.IsZero() || k.NotAfter.After(now.Add(SecretWarnWithin)) {
				continue
			}
			expiring++
			isExpired := !now.Before(k.NotAfter)
			if isExpired {
				expired++
			}
			if !warn {
				continue
			}
			fields := []zap.Field{zap.String("app_id", a.ID), zap.String("app_type", a.Type), zap.String("app_code", a.Code),
				zap.String("key_thumbprint", k.Thumbprint), zap.Time("key_expire_time", k.NotAfter.UTC())}
			if isExpired {
				s.log.Warn("application request signing key has expired: requests it signs are refused (SIGNING_KEY_EXPIRED); "+
					"register a new key (uias ctl app update --signing-key)", fields...)
				continue
			}
			s.log.Warn("application request signing key expires soon: register a new key beside it before then "+
				"(uias ctl app update --signing-key OLD.pem --signing-key NEW.pem)",
				append(fields, zap.Duration("expires_in", k.NotAfter.Sub(now).Round(time.Minute)))...)
		}
	})
	return expiring, expired, err
}

// secretsChanged asks RunSecretExpiryWarnings for a recount (an
// application created, its secret rotated or its lifetime changed here).
func (s *Service) secretsChanged() {
	select {
	case s.secrets.recount <- struct{}{}:
	default:
	}
}

// RunSecretExpiryWarnings runs WarnExpiringSecrets at once and then every
// warnEvery (a day), and between them CountExpiringSecrets every
// countEvery and after each secret change made here, until ctx ends; a
// failed run is logged and retried after retry.
func (s *Service) RunSecretExpiryWarnings(ctx context.Context, warnEvery, countEvery, retry time.Duration) {
	nextWarn := s.now()
	for {
		wait := countEvery
		var err error
		if now := s.now(); !now.Before(nextWarn) {
			if err = s.WarnExpiringSecrets(ctx); err == nil {
				nextWarn = now.Add(warnEvery)
			}
		} else {
			err = s.CountExpiringSecrets(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("checking application secret expiry", zapErr(err))
			wait = min(retry, countEvery)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.secrets.recount:
			t.Stop()
		}
	}
}
