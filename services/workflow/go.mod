module github.com/cbnats/circuitbreaker/services/workflow

go 1.26
