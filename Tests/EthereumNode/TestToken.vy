# pragma version 0.4.3
# A minimal ERC-20 token for TelePay's tests on the local EVM. It reverts with a reason string
# (Error(string)) on a short balance, and anyone may freeze a holder (`freeze`), so tests can make a
# transfer revert after its gas estimate passed and check that the revert reason is recorded.
# TestToken.bin is its creation bytecode; regenerate it with scripts/compile-test-token.

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
frozen: public(HashMap[address, bool])


@deploy
def __init__(_name: String[32], _symbol: String[8], _decimals: uint8, _supply: uint256, _holder: address):
    self.name = _name
    self.symbol = _symbol
    self.decimals = _decimals
    self.totalSupply = _supply
    self.balanceOf[_holder] = _supply
    log Transfer(sender=empty(address), receiver=_holder, value=_supply)


@external
def transfer(_to: address, _value: uint256) -> bool:
    assert not self.frozen[msg.sender], "ERC20: sender is frozen"
    assert self.balanceOf[msg.sender] >= _value, "ERC20: transfer amount exceeds balance"
    self.balanceOf[msg.sender] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=msg.sender, receiver=_to, value=_value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    assert self.balanceOf[_from] >= _value, "ERC20: transfer amount exceeds balance"
    assert self.allowance[_from][msg.sender] >= _value, "ERC20: insufficient allowance"
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    self.allowance[_from][msg.sender] -= _value
    log Transfer(sender=_from, receiver=_to, value=_value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    self.allowance[msg.sender][_spender] = _value
    log Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def freeze(_holder: address, _frozen: bool):
    self.frozen[_holder] = _frozen
