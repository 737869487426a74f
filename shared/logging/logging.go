// Package logging builds the process's one zerolog logger.
package logging

import (
	"io"

	"github.com/rs/zerolog"
)

// New returns a JSON logger at the named level ("debug", "info", "warn",
// "error"); an unknown level means info.
func New(w io.Writer, level, service string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", service).Logger()
}
