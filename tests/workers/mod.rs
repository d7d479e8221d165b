mod onboarding;
