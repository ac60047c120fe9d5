package server

// ReloadTLSIfChanged runs one check of the TLS files, as the watcher does every
// TLSReloadInterval, and reports whether it reloaded.
func (s *Server) ReloadTLSIfChanged() bool { return s.tls.certs.reloadIfChanged() }
