package auth

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// ReloadOnHangup reloads a's auth file on every SIGHUP until ctx ends:
// rotated keys stop working without a restart, and connections stay up.
// A file that does not load leaves the previous one in force.
func ReloadOnHangup(ctx context.Context, a *Authenticator, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				warnings, err := a.Reload()
				if err != nil {
					log.Error().Err(err).Msg("auth file not reloaded; the previous one stays in force")
					continue
				}
				for _, w := range warnings {
					log.Warn().Msg(w)
				}
				log.Info().Msg("auth file reloaded")
			}
		}
	}()
}

// Open loads the auth file at path for a process, logs its warnings and
// reloads it on SIGHUP until ctx ends.
func Open(ctx context.Context, path string, log zerolog.Logger) (*Authenticator, error) {
	a, warnings, err := Load(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	ReloadOnHangup(ctx, a, log)
	return a, nil
}
