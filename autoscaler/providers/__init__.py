"""Provider clients behind one interface (`base.Provider`); the fake provider APIs they are
tested against live in `autoscaler.fakecloud`."""
