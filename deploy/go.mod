module github.com/cbnats/circuitbreaker/deploy

go 1.26
