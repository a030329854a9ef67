-- graph: the edges of a dependency graph of taps (tap_edge): TARGET is computed
-- from SOURCE (a tap's pairing-key name, or a command-line option written -NAME),
-- and what the edge rests on.
-- Parameters:
--   graph    tap_edge.graph (the seeded graph is 'nanoBragg')
SELECT target, source, basis
FROM tap_edge
WHERE graph = CAST(:graph AS TEXT)
ORDER BY target, source
