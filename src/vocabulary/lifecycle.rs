//! The five ITIL lifecycle stages and the moves between them: pure rules.

use sea_orm::entity::prelude::StringLen;

use super::TicketKind;

vocabulary! {
    /// A stage of the ITIL service lifecycle.
    Stage {
        /// Deciding which services to offer and why.
        Strategy = "STRATEGY",
        /// Designing the service and how it will be run.
        Design = "DESIGN",
        /// Building, testing and deploying it: changes live here.
        Transition = "TRANSITION",
        /// Running it day to day: incidents, requests and problems live here.
        Operation = "OPERATION",
        /// Measuring and improving it.
        ContinualImprovement = "CONTINUAL_IMPROVEMENT",
    }
}

impl Stage {
    /// Every stage, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Strategy,
        Self::Design,
        Self::Transition,
        Self::Operation,
        Self::ContinualImprovement,
    ];

    /// Position in the lifecycle, from 1.
    pub fn position(self) -> i32 {
        match self {
            Self::Strategy => 1,
            Self::Design => 2,
            Self::Transition => 3,
            Self::Operation => 4,
            Self::ContinualImprovement => 5,
        }
    }

    /// The stage's display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Strategy => "Service strategy",
            Self::Design => "Service design",
            Self::Transition => "Service transition",
            Self::Operation => "Service operation",
            Self::ContinualImprovement => "Continual service improvement",
        }
    }

    /// What happens in this stage.
    pub fn description(self) -> &'static str {
        match self {
            Self::Strategy => {
                "Decide which services to offer, to whom, and why: demand, value and portfolio."
            }
            Self::Design => {
                "Design the service and its management: capacity, availability, continuity, security, levels."
            }
            Self::Transition => {
                "Build, test and deploy the service into production through controlled changes."
            }
            Self::Operation => {
                "Deliver the service day to day: fulfil requests, restore it after incidents, fix problems."
            }
            Self::ContinualImprovement => "Measure the service against its targets and improve it.",
        }
    }

    /// The stages a service may move to from this one.
    pub fn next(self) -> &'static [Self] {
        match self {
            Self::Strategy => &[Self::Design],
            Self::Design => &[Self::Transition],
            Self::Transition => &[Self::Operation],
            Self::Operation => &[Self::ContinualImprovement],
            Self::ContinualImprovement => &[Self::Design, Self::Transition, Self::Operation],
        }
    }

    /// The ticket kinds whose work belongs to this stage.
    pub fn ticket_kinds(self) -> &'static [TicketKind] {
        match self {
            Self::Transition => &[TicketKind::Change],
            Self::Operation => &[
                TicketKind::Incident,
                TicketKind::ServiceRequest,
                TicketKind::Problem,
            ],
            _ => &[],
        }
    }
}

vocabulary! {
    /// Whether a service is offered.
    ServiceStatus {
        /// In the portfolio.
        Active = "ACTIVE",
        /// Withdrawn for good.
        Retired = "RETIRED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_runs_forward_and_improvement_loops_back() {
        assert_eq!(Stage::Strategy.next(), &[Stage::Design]);
        assert_eq!(Stage::Design.next(), &[Stage::Transition]);
        assert_eq!(Stage::Transition.next(), &[Stage::Operation]);
        assert_eq!(Stage::Operation.next(), &[Stage::ContinualImprovement]);
        assert_eq!(
            Stage::ContinualImprovement.next(),
            &[Stage::Design, Stage::Transition, Stage::Operation]
        );
        for stage in Stage::ALL {
            assert!(
                !stage.next().contains(&stage),
                "{stage:?} does not move to itself"
            );
        }
    }

    #[test]
    fn positions_follow_the_lifecycle_and_kinds_belong_to_their_stage() {
        let positions: Vec<i32> = Stage::ALL.iter().map(|s| s.position()).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5]);
        assert_eq!(Stage::Transition.ticket_kinds(), &[TicketKind::Change]);
        assert!(
            Stage::Operation
                .ticket_kinds()
                .contains(&TicketKind::Incident)
        );
        assert!(Stage::Strategy.ticket_kinds().is_empty());
    }
}
