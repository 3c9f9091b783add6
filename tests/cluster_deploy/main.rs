//! Cluster-wide deploys (docs/cluster.md) with a real `redis-server` and
//! real `waterspout serve` processes: a deploy on one node served by the
//! others, a late node catching up before it serves, nodes killed in the
//! middle of deploys, and nginx in front of three nodes.

mod deploys;
mod nginx;
mod nodes;
