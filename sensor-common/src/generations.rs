//! The generations every frame checks its flow against: policy and poll epoch.

/// What every frame checks its flow against, in one array value
/// ([`maps::POLICY_GEN`](crate::maps::POLICY_GEN)): two writers in userspace, each moving
/// its own field on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    /// The policy generation: a flow whose verdict was taken under an older one takes
    /// it again (0: none written yet).
    pub policy: u32,
    /// The poll epoch: a cached flow's first frame in a new one goes to the flow map.
    pub poll: u32,
}

const _: () = assert!(core::mem::size_of::<Generations>() == 8);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::Generations {}
}
