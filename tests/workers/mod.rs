mod bench;
mod onboarding;
