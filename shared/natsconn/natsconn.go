// Package natsconn opens NATS connections from config.NATS with the options
// every process wants: a name, credentials, TLS, endless reconnects and a
// reconnect buffer, and logged connection events.
package natsconn

import (
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
)

// Options returns the nats.Options for cfg; name labels the connection.
func Options(cfg config.NATS, name string, log zerolog.Logger) []nats.Option {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
		nats.ReconnectBufSize(cfg.ReconnectBuffer),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("NATS disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if s != nil {
				ev = ev.Str("subject", s.Subject)
			}
			ev.Msg("NATS async error")
		}),
	}
	if cfg.ConnectTimeout > 0 {
		opts = append(opts, nats.Timeout(cfg.ConnectTimeout))
	}
	return append(opts, auth(cfg)...)
}

func auth(cfg config.NATS) []nats.Option {
	var opts []nats.Option
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKey != "" {
		if o, err := nats.NkeyOptionFromSeed(cfg.NKey); err == nil {
			opts = append(opts, o)
		} else {
			opts = append(opts, func(*nats.Options) error { return err })
		}
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	return opts
}

// Connect dials cfg.URL.
func Connect(cfg config.NATS, name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(cfg.URL, append(Options(cfg, name, log), extra...)...)
}
