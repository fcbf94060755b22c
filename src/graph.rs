//! The dependency graph of a stack's workers: "client needs host" edges,
//! topological levels and cycle detection.
