module github.com/cbnats/circuitbreaker/schema

go 1.26
