//! Models of spatial architectures (FuseMax, FLAT): the analytical model used inside the
//! mapper's search, and reports built from its evaluations.
pub mod analytical;
pub mod mapper;
pub mod report;
pub mod run;
