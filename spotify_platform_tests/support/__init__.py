"""What several test modules share: fake services, raw records and throwaway databases."""
