"""Provider clients behind one interface (`base.Provider`); simulators live in `autoscaler.sim`."""
