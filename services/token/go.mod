module github.com/cbnats/circuitbreaker/services/token

go 1.26
