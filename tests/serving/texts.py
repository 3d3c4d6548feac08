"""The four short biomedical texts several service tests rank: two on statins, two off topic."""

CLAIM_DOCS = [
    "Statins inhibit HMG-CoA reductase and lower LDL cholesterol in the blood.",
    "Malaria is transmitted by Anopheles mosquitoes carrying Plasmodium parasites.",
    "Cholesterol-lowering drugs such as statins reduce cardiovascular events.",
    "Vitamin D supplementation and bone mineral density in older adults.",
]
