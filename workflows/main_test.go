package workflows_test

import (
	"testing"

	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
